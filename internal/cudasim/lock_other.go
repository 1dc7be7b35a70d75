//go:build !unix

package cudasim

// lockFile is a no-op where flock does not exist; the simulation is
// Linux-only anyway (it builds ELF shared objects).
func lockFile(string) (func(), error) { return func() {}, nil }
