// Package output writes documents to where they are searched: Elasticsearch, or
// NDJSON files for development. A Sink reports the outcome of every document, so that
// the caller commits Kafka offsets only past what is stored.
package output

import (
	"context"

	"github.com/logpipe/logpipe/logtransfer/document"
)

// Outcome is what happened to one document.
type Outcome int

const (
	// Stored: the document is acknowledged.
	Stored Outcome = iota
	// Retry: a transient failure (429, 503, 408, 507, ...): send it again later.
	Retry
	// Reject: the document can never be stored as is (400 mapping or parse error,
	// 404): it goes to the dead-letter topic.
	Reject
)

// Result is the outcome of one document.
type Result struct {
	Outcome Outcome
	Status  int    // HTTP status of the item
	Error   string // the reason, for Retry and Reject
	// Existed: a create found the document already there (data streams' 409 for a
	// re-delivered record), which counts as stored.
	Existed bool
}

// Sink stores documents.
type Sink interface {
	// Write stores docs. An error means the whole request failed (nothing is known to
	// be stored: retry them all); otherwise there is one Result per document.
	Write(ctx context.Context, docs []document.Doc) ([]Result, error)
	Close() error
}

// classify maps an item's HTTP status to an outcome.
func classify(status int) Outcome {
	switch {
	case status >= 200 && status < 300:
		return Stored
	case status == 400 || status == 404:
		return Reject
	default: // 429, 503, 408, 507 and anything unexpected: never drop, try again
		return Retry
	}
}
