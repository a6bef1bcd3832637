// Package scripts holds logpipe's operations files: systemd units, the install
// script and the collection-config helper. Its tests check them, and
// docker-compose.yml and the Dockerfile, for consistency, since no Docker engine or
// systemd runs where the tests do.
package scripts
