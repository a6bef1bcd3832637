// Package topicname checks Kafka topic names, for the broker and for the agent's
// collection config alike.
package topicname

import "fmt"

// Validate reports whether name is a legal Kafka topic name: 1 to 249 characters of
// [a-zA-Z0-9._-], and neither "." nor "..".
func Validate(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("%q: a topic name has 1 to 249 characters and is not \".\" or \"..\"", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q: character %q is not one of [a-zA-Z0-9._-]", name, c)
		}
	}
	return nil
}
