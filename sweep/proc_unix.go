//go:build unix

package sweep

import (
	"os"
	"os/exec"
	"syscall"
)

// setGroup starts the worker in its own process group, so that a Ctrl-C
// in the terminal reaches only the sweep, which interrupts each worker
// once: a second signal would make pad train stop without a checkpoint.
func setGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// interrupt asks a worker to checkpoint and exit, as Ctrl-C does.
func interrupt(p *os.Process) error { return p.Signal(os.Interrupt) }
