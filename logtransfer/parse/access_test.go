package parse

import "testing"

const combinedFields = `source.address="93.184.216.34"
source.ip="93.184.216.34"
user.name="frank"
http.request.method="GET"
url.original="/apache_pb.gif?a=1&b=2"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=2326
http.request.referrer="http://www.example.com/start.html"
user_agent.original="Mozilla/5.0 (X11; Linux x86_64)"`

func TestNginxAccess(t *testing.T) {
	p, _ := NewSetOrDie(t).Lookup("nginx.access")
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "combined", line: `93.184.216.34 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=1&b=2 HTTP/1.1" 200 2326 "http://www.example.com/start.html" "Mozilla/5.0 (X11; Linux x86_64)"`,
			fields: combinedFields, time: "2000-10-10T13:55:36-07:00"},
		{name: "main with xff", line: `10.1.2.3 - - [05/Mar/2024:10:11:12 +0100] "POST /api/v1/items HTTP/2.0" 201 17 "-" "curl/8.5.0" "203.0.113.9, 10.0.0.1"`,
			fields: `source.address="10.1.2.3"
source.ip="10.1.2.3"
http.request.method="POST"
url.original="/api/v1/items"
http.version="2.0"
http.response.status_code=201
http.response.body.bytes=17
user_agent.original="curl/8.5.0"
nginx.access.x_forwarded_for=["203.0.113.9","10.0.0.1"]`, time: "2024-03-05T10:11:12+01:00"},
		{name: "main with dash xff", line: `10.1.2.3 - - [05/Mar/2024:10:11:12 +0000] "GET / HTTP/1.1" 304 0 "-" "-" "-"`,
			fields: `source.address="10.1.2.3"
source.ip="10.1.2.3"
http.request.method="GET"
url.original="/"
http.version="1.1"
http.response.status_code=304
http.response.body.bytes=0`, time: "2024-03-05T10:11:12Z"},
		{name: "vhost", line: `example.com 93.184.216.34 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "ua"`,
			fields: `destination.domain="example.com"
source.address="93.184.216.34"
source.ip="93.184.216.34"
http.request.method="GET"
url.original="/"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=5
user_agent.original="ua"`, time: "2000-10-10T13:55:36-07:00"},
		{name: "vhost with port", line: `example.com:443 ::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "-"`,
			fields: `destination.domain="example.com"
destination.port=443
source.address="::1"
source.ip="::1"
http.request.method="GET"
url.original="/"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=5`, time: "2000-10-10T13:55:36-07:00"},
		{name: "client list behind proxies", line: `10.0.0.2, 10.0.0.1, 85.181.35.98, 1.1.1.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "-"`,
			fields: `source.address="85.181.35.98"
source.ip="85.181.35.98"
nginx.access.remote_ip_list=["10.0.0.2","10.0.0.1","85.181.35.98","1.1.1.1"]
http.request.method="GET"
url.original="/"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=5`, time: "2000-10-10T13:55:36-07:00"},
		{name: "private list takes its first", line: `10.0.0.2, 192.168.1.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5`,
			fields: `source.address="10.0.0.2"
source.ip="10.0.0.2"
nginx.access.remote_ip_list=["10.0.0.2","192.168.1.1"]
http.request.method="GET"
url.original="/"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=5`, time: "2000-10-10T13:55:36-07:00"},
		{name: "ipv6 client", line: `2001:db8::1 - - [10/Oct/2000:13:55:36 +0530] "GET /x HTTP/1.1" 404 0 "-" "-"`,
			fields: `source.address="2001:db8::1"
source.ip="2001:db8::1"
http.request.method="GET"
url.original="/x"
http.version="1.1"
http.response.status_code=404
http.response.body.bytes=0`, time: "2000-10-10T13:55:36+05:30"},
		{name: "bare dash request", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "-" 400 0 "-" "-"`,
			fields: `source.address="1.2.3.4"
source.ip="1.2.3.4"
http.response.status_code=400
http.response.body.bytes=0`, time: "2000-10-10T13:55:36-07:00"},
		{name: "tls handshake garbage", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03" 400 157 "-" "-"`,
			fields: `source.address="1.2.3.4"
source.ip="1.2.3.4"
http.response.status_code=400
http.response.body.bytes=157`, time: "2000-10-10T13:55:36-07:00"},
		{name: "escaped quotes", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a\"b\\c\x22 HTTP/1.1" 200 1 "http://x/\"q\"" "Mozilla \"quoted\""`,
			fields: `source.address="1.2.3.4"
source.ip="1.2.3.4"
http.request.method="GET"
url.original="/a\"b\\c\\x22"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=1
http.request.referrer="http://x/\"q\""
user_agent.original="Mozilla \"quoted\""`, time: "2000-10-10T13:55:36-07:00"},
		{name: "host name and unix socket", line: `unix: - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1`,
			fields: `source.address="unix:"
http.request.method="GET"
url.original="/"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=1`, time: "2000-10-10T13:55:36-07:00"},
		{name: "method kept as written", line: `localhost - - [10/Oct/2000:13:55:36 -0700] "get /%7Euser/a%20b HTTP/1.0" 200 1 "-" "-" trailing rt=0.001`,
			fields: `source.address="localhost"
http.request.method="get"
url.original="/%7Euser/a%20b"
http.version="1.0"
http.response.status_code=200
http.response.body.bytes=1`, time: "2000-10-10T13:55:36-07:00"},
		{name: "user with utf8 and CRLF", line: "1.2.3.4 - j\xc3\xbcrgen [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1\r\n",
			fields: `source.address="1.2.3.4"
source.ip="1.2.3.4"
user.name="jürgen"
http.request.method="GET"
url.original="/"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=1`, time: "2000-10-10T13:55:36-07:00"},
		{name: "no time", line: `1.2.3.4 - - "GET / HTTP/1.1" 200 1`, err: "expected '[' before the time at byte"},
		{name: "bad time", line: `1.2.3.4 - - [10/Foo/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1`, err: "expected a time like [10/Oct/2000:13:55:36 -0700] at byte 12"},
		{name: "bad day", line: `1.2.3.4 - - [31/Feb/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1`, err: "expected a time"},
		{name: "too few before time", line: `1.2.3.4 - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1`, err: "expected client, ident and user"},
		{name: "unterminated request", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1 200 1`, err: `expected '"' after the request`},
		{name: "no status", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" abc 1`, err: "expected a status code at byte 58"},
		{name: "no bytes", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200`, err: "expected ' ' before the bytes sent"},
		{name: "referrer without agent", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-"`, err: "before the user agent"},
		{name: "error log line", line: `2024/03/05 10:11:12 [error] 1#1: boom`, err: "expected"},
		{name: "empty", line: ``, err: "expected '[' before the time at byte 0"},
	})
}

func TestApacheAccess(t *testing.T) {
	p, _ := NewSetOrDie(t).Lookup("apache.access")
	in := Input{Location: paris, Read: read}
	runTable(t, p, in, []tc{
		{name: "common", line: `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
			fields: `source.address="127.0.0.1"
source.ip="127.0.0.1"
user.name="frank"
http.request.method="GET"
url.original="/apache_pb.gif"
http.version="1.0"
http.response.status_code=200
http.response.body.bytes=2326`, time: "2000-10-10T13:55:36-07:00"},
		{name: "common no bytes", line: `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "HEAD / HTTP/1.1" 304 -`,
			fields: `source.address="127.0.0.1"
source.ip="127.0.0.1"
http.request.method="HEAD"
url.original="/"
http.version="1.1"
http.response.status_code=304`, time: "2000-10-10T13:55:36-07:00"},
		{name: "combined", line: `93.184.216.34 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=1&b=2 HTTP/1.1" 200 2326 "http://www.example.com/start.html" "Mozilla/5.0 (X11; Linux x86_64)"`,
			fields: combinedFields, time: "2000-10-10T13:55:36-07:00"},
		{name: "vhost combined", line: `www.example.com:80 93.184.216.34 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 10 "-" "ua" "not xff"`,
			fields: `destination.domain="www.example.com"
destination.port=80
source.address="93.184.216.34"
source.ip="93.184.216.34"
http.request.method="GET"
url.original="/"
http.version="1.1"
http.response.status_code=200
http.response.body.bytes=10
user_agent.original="ua"`, time: "2000-10-10T13:55:36-07:00"},
		{name: "vhost ip", line: `192.0.2.1:8080 host.example - - [10/Oct/2000:13:55:36 -0700] "-" 408 -`,
			fields: `destination.ip="192.0.2.1"
destination.port=8080
source.address="host.example"
http.response.status_code=408`, time: "2000-10-10T13:55:36-07:00"},
		{name: "ipv6", line: `::ffff:1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "OPTIONS * HTTP/1.0" 200 -`,
			fields: `source.address="::ffff:1.2.3.4"
source.ip="::ffff:1.2.3.4"
http.request.method="OPTIONS"
url.original="*"
http.version="1.0"
http.response.status_code=200`, time: "2000-10-10T13:55:36-07:00"},
		{name: "http 0.9", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 3`,
			fields: `source.address="1.2.3.4"
source.ip="1.2.3.4"
http.request.method="GET"
url.original="/"
http.response.status_code=200
http.response.body.bytes=3`, time: "2000-10-10T13:55:36-07:00"},
		{name: "garbage request", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "SSH-2.0-Go" 400 226`,
			fields: `source.address="1.2.3.4"
source.ip="1.2.3.4"
http.response.status_code=400
http.response.body.bytes=226`, time: "2000-10-10T13:55:36-07:00"},
		{name: "missing bracket", line: `1.2.3.4 - - 10/Oct/2000:13:55:36 -0700] "GET /" 200 3`, err: "expected '[' before the time"},
		{name: "bad zone", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 PST] "GET /" 200 3`, err: "expected a time"},
		{name: "truncated", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /`, err: "after the request"},
		{name: "status too long", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 2000 3`, err: "expected a status code"},
		{name: "bytes not a number", line: `1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /" 200 x`, err: "expected the bytes sent"},
		{name: "too many tokens", line: `a b c d e [10/Oct/2000:13:55:36 -0700] "GET /" 200 3`, err: "expected '[' before the time at byte 8"},
	})
}

func NewSetOrDie(t testing.TB) *Set {
	s, err := NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
