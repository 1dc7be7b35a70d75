module github.com/pad-dreaming/pad

go 1.26.8
