package main

import "syscall"

// sysProcAttr puts a child in its own process group (Ctrl-C in the terminal reaches
// devrun only, which then stops the children in order) and has the kernel send it
// SIGTERM if devrun dies without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
