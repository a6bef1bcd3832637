// Command broker is a logpipe component; see the README.
package main

import (
	"context"
	"errors"

	"github.com/logpipe/logpipe/internal/service"
)

func main() {
	service.Main("broker", func(ctx context.Context, f service.Flags) error {
		return errors.New("not built yet")
	})
}
