package e2e

import (
	"context"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// embedetcdFreeAddr returns a free 127.0.0.1 port.
func embedetcdFreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// putKey stores value at key in etcd.
func putKey(endpoint, key, value string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cli.Put(ctx, key, value)
	return err
}
