% Writes the small SVHN-style MAT-file fixtures used by svhn_test.go.
% Run from dataset/testdata with Debian's Octave (7.3):
%   octave --no-gui --quiet svhn_fixture.m
%
% X: uint8 32x32x3x3 with X(i,j,k,n) = mod(3*i + 7*j + 50*k + 11*n, 256)
%    (1-based indices; i = row, j = column, k = channel, n = image);
% y: double 3x1 labels [10; 1; 5] (10 stands for the digit 0).
% Extra variables of other classes come first, so a reader must skip them.
[i, j, k, n] = ndgrid(1:32, 1:32, 1:3, 1:3);
X = uint8(mod(3*i + 7*j + 50*k + 11*n, 256));
y = [10; 1; 5];
note = 'SVHN-style fixture for pad';
cellvar = {1, 'a'};
big = linspace(0, 1, 7);
save('-v7', 'svhn_v7.mat', 'note', 'cellvar', 'big', 'X', 'y');
save('-v6', 'svhn_v6.mat', 'note', 'cellvar', 'big', 'X', 'y');
% One image: MATLAB drops the trailing singleton dimension (32x32x3).
X = X(:, :, :, 2);
y = 1;
save('-v7', 'svhn_one_v7.mat', 'X', 'y');
