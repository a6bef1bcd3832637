// Package version holds the build version of the logpipe binaries.
package version

// Version is set at build time with -ldflags "-X github.com/logpipe/logpipe/internal/version.Version=...".
// It is a var only so that the linker can set it; nothing at run time changes it.
var Version = "dev"
