package e2e

import "net"

// embedetcdFreeAddr returns a free 127.0.0.1 port.
func embedetcdFreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
