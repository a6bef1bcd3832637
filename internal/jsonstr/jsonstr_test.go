package jsonstr

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAppend: Append writes what encoding/json writes for the string with invalid
// UTF-8 replaced; AppendLimit writes a prefix of the text, valid JSON, cut only when
// it had to be.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"plain", `GET "/x" \ <a>&`, "tab\tnl\nret\r\x00\x1f\b\f", "bad \xff\xfe utf8 \xc3", "\u2028\u2029é€😀", ""} {
		f.Add([]byte(s), 5)
	}
	f.Fuzz(func(t *testing.T, s []byte, limit int) {
		want, _ := json.Marshal(strings.ToValidUTF8(string(s), "\uFFFD"))
		if got := Append(nil, s); string(got) != string(want) {
			t.Fatalf("%q: %s, want %s", s, got, want)
		}
		limit = max(0, limit%64)
		got, cut := AppendLimit(nil, s, limit)
		var text string
		if err := json.Unmarshal(got, &text); err != nil || !utf8.ValidString(text) || len(text) > limit {
			t.Fatalf("%q limit %d: %s %v", s, limit, got, err)
		}
		if full := strings.ToValidUTF8(string(s), "\uFFFD"); !strings.HasPrefix(full, text) || cut != (text != full) {
			t.Fatalf("%q limit %d: %q cut %v", s, limit, text, cut)
		}
	})
}
