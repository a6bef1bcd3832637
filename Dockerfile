# One image with the three logpipe binaries; docker-compose.yml picks the command.
#   docker build -t logpipe .
#   docker run --rm logpipe /usr/local/bin/broker -version

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/logpipe/logpipe/internal/version.Version=${VERSION}" \
      -o /out/ ./cmd/broker ./cmd/logagent ./cmd/logtransfer

# Static binaries on a small alpine: CA certificates (Elasticsearch over TLS), and a
# shell and wget for healthchecks and the one-shot seed service. The agent runs as
# root in the container to read the host's /var/log (mounted read-only).
FROM alpine:3.20
RUN apk add --no-cache ca-certificates tzdata
COPY --from=build /out/broker /out/logagent /out/logtransfer /usr/local/bin/
COPY conf/docker/ /etc/logpipe/
WORKDIR /var/lib/logpipe
EXPOSE 9092 9308 9309 9310
ENTRYPOINT []
CMD ["/usr/local/bin/broker", "-config", "/etc/logpipe/broker.ini"]
