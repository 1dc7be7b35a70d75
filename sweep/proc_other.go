//go:build !unix

package sweep

import (
	"os"
	"os/exec"
)

func setGroup(cmd *exec.Cmd) {}

// interrupt stops a worker; without Unix signals it cannot be asked to
// checkpoint first, so the run resumes from its last checkpoint.
func interrupt(p *os.Process) error { return p.Kill() }
