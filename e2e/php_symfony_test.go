package e2e

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// symfonyApp is the absolute path of examples/php/symfony, with a fresh
// Symfony cache (a cache built from other sources would serve stale
// routes: the prod cache is not checked against the files).
func symfonyApp(t *testing.T) string {
	t.Helper()
	for _, f := range []string{"Bundle/FrameworkBundle/autoload.php", "Component/Runtime/autoload.php", "Component/Dotenv/autoload.php", "Component/Yaml/autoload.php"} {
		if _, err := os.Stat("/usr/share/php/Symfony/" + f); err != nil {
			t.Fatal("the Symfony example needs Debian's Symfony 5.4 packages: apt-get install php-symfony-framework-bundle php-symfony-runtime php-symfony-dotenv php-symfony-yaml (.ci/run does it)")
		}
	}
	app, err := filepath.Abs("../examples/php/symfony")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(app, "var", "cache")); err != nil {
		t.Fatal(err)
	}
	return app
}

// symfonyWorkers is a config in which n PHP workers run the Symfony app's
// unchanged front controller with Drover\Symfony\Runtime; extra goes into
// the worker section.
func symfonyWorkers(n int, app, extra string) string {
	return fmt.Sprintf("worker_num: %d\nworker:\n  cmd: [php, %s]\n  launch: exec\n  env: {APP_RUNTIME: 'Drover\\Symfony\\Runtime'}\n%slisteners:\n%s",
		n, filepath.Join(app, "public", "index.php"), extra, httpListener)
}

// fullAnswer is a response as the client saw it: status, headers and body.
type fullAnswer struct {
	status int
	header http.Header
	body   []byte
}

// noRedirects is a client that returns redirects instead of following them.
var noRedirects = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func doFull(t *testing.T, client *http.Client, method, url string, body []byte, hdr ...string) fullAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return fullAnswer{resp.StatusCode, resp.Header, b}
}

// transportHeaders belong to the server that frames the response, not to
// the app: how the body is framed (nginx sends PHP's output chunked,
// drover gives a whole body its length), the connection, the server's
// name, X-Accel-Buffering (an app's instruction to nginx, which nginx
// takes out); Date and Expires (which Symfony sets from the clock) are
// timing.
var transportHeaders = []string{"Date", "Expires", "Server", "Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "X-Accel-Buffering"}

var (
	sessionID = regexp.MustCompile(`PHPSESSID=[a-zA-Z0-9,-]+`)
	// Laravel encrypts its cookies (the session's, XSRF-TOKEN's, the
	// app's): their values differ on every response.
	encryptedCookie = regexp.MustCompile(`=eyJ[A-Za-z0-9+/=%]+`)
	cookieExpires   = regexp.MustCompile(`expires=[^;]+`)
	cookieMaxAge    = regexp.MustCompile(`Max-Age=\d+`)
)

// roundMaxAge rounds a cookie's Max-Age to ten seconds: it is its expiry
// less the clock, so two answers a second apart may say 7200 and 7199.
func roundMaxAge(v string) string {
	return cookieMaxAge.ReplaceAllStringFunc(v, func(m string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(m, "Max-Age="))
		return fmt.Sprintf("Max-Age=%d", (n+5)/10*10)
	})
}

// normalizeText replaces what differs between two servers' answers that
// say the same: the server's own address, session ids, encrypted values.
func normalizeText(s, host string) string {
	s = strings.ReplaceAll(s, host, "HOST")
	s = strings.ReplaceAll(s, `"port":`+host[strings.LastIndexByte(host, ':')+1:], `"port":PORT`)
	s = sessionID.ReplaceAllString(s, "PHPSESSID=SID")
	return encryptedCookie.ReplaceAllString(s, "=ENCRYPTED")
}

// normalized is a for comparison: transport headers out (Content-Length
// kept where the app set it, on a byte range or a file), the server's own
// address, session ids, encrypted cookies and cookie expiry dates replaced.
func (a fullAnswer) normalized(base string) string {
	host := strings.TrimPrefix(base, "http://")
	h := a.header.Clone()
	for _, k := range transportHeaders {
		if k == "Content-Length" && h.Get("Accept-Ranges") != "" {
			continue
		}
		h.Del(k)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", a.status)
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			if k == "Set-Cookie" {
				v = roundMaxAge(cookieExpires.ReplaceAllString(v, "expires=DATE")) // from the clock
			}
			fmt.Fprintf(&b, "%s: %s\n", k, normalizeText(v, host))
		}
	}
	b.WriteString("\n")
	b.WriteString(normalizeText(string(a.body), host))
	return b.String()
}

// firstDifference shows where php-fpm's answer (a) and drover's (b) part:
// the head of each, and the lines around the first that differs.
func firstDifference(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	i := 0
	for i < len(la) && i < len(lb) && la[i] == lb[i] {
		i++
	}
	from := max(0, i-3)
	clip := func(l []string) string {
		to := min(len(l), i+4)
		if from >= to {
			return "(ends here)"
		}
		out := strings.Join(l[from:to], "\n")
		if len(out) > 3000 {
			out = out[:3000] + "…"
		}
		return out
	}
	return fmt.Sprintf("first difference at line %d (of %d and %d)\n--- php-fpm:\n%s\n--- drover:\n%s", i+1, len(la), len(lb), clip(la), clip(lb))
}

// multipartParts encodes parts as multipart/form-data: each part a field
// name, a file name (empty: a plain field; "-": a file input left empty)
// and content.
func multipartParts(parts ...[3]string) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		switch p[1] {
		case "":
			mw.WriteField(p[0], p[2])
		case "-":
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=""`, p[0]))
			h.Set("Content-Type", "application/octet-stream")
			mw.CreatePart(h)
		default:
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p[0], p[1]))
			h.Set("Content-Type", "application/x-report")
			w, _ := mw.CreatePart(h)
			w.Write([]byte(p[2]))
		}
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// The Symfony 5.4 example (Debian's packages), its public/index.php
// unchanged, answers the same bytes under drover (Drover\Symfony\Runtime)
// as under nginx + php-fpm (SymfonyRuntime), apart from Date, Expires and
// the framing: JSON, query arrays, server vars, client IP and HTTPS flag
// behind a trusted proxy, a redirect, a streamed response, a binary file
// (whole and a byte range), 404 and 500 pages, form, JSON and multipart
// POSTs, and a session with cookies across requests.
func TestSymfonySameUnderDroverAndPHPFPM(t *testing.T) {
	app := symfonyApp(t)
	fpm := startFPM(t, filepath.Join(app, "public", "index.php"))
	s := startServer(t, symfonyWorkers(2, app, ""))
	drover := "http://" + tcpAddr(s.addrs[0])

	report := strings.Repeat("\x00\x01binary\xfe\xff report line\r\n", 12000) // 264 kB: several body frames
	upload, uploadType := multipartParts([3]string{"title", "", "Q3 report"}, [3]string{"tags[]", "", "x"}, [3]string{"tags[]", "", "y"},
		[3]string{"doc", "report.bin", report}, [3]string{"extra[]", "a.txt", "first"}, [3]string{"extra[]", "b.txt", "second"}, [3]string{"none", "-", ""})
	form, formType := multipartParts([3]string{"user", "", "bob"}, [3]string{"list[a]", "", "1"})

	// What both must say, so that the same answer is also the right one.
	reportSum := fmt.Sprintf("%x", sha1.Sum([]byte(report)))
	want := map[string]string{
		"JSON from a controller":                            `{"hello":"drover"}`,
		"request facts: query arrays, cookies, server vars": `"query":{"a":["1","2"],"b":{"c":"d"},"e":" f"},"cookies":{"theme":"dark","x_y":"1","sp%20ace":"=v"}`,
		"client IP and HTTPS behind a trusted proxy":        `"client_ip":"203.0.113.7","secure":true,"scheme":"https"`,
		"redirect":          `Redirecting to /hello?name=redirected`,
		"streamed response": "line 1000 of 1000\n",
		"not found":         `The server returned a "404 Not Found".`,
		"exception: 500":    `The server returned a "500 Internal Server Error".`,
		"PHP Error, not caught by HttpKernel: 500": `The server returned a "500 Internal Server Error".`,
		"form POST":              `{"fields":{"name":"Ann Lee","tags":["a","b"],"empty":"","x_y":"1"},"query":{"from":"query"},"type":"form"}`,
		"multipart upload, kept": `"sha1":"` + reportSum + `"}`,
	}
	cases := []struct {
		name, method, path string
		body               []byte
		hdr                []string
	}{
		{"JSON from a controller", "GET", "/hello?name=drover", nil, nil},
		{"HEAD", "HEAD", "/hello?name=drover", nil, nil},
		{"request facts: query arrays, cookies, server vars", "GET", "/request?a[]=1&a[]=2&b[c]=d&e=%20f", nil,
			[]string{"Cookie", "theme=dark; x.y=1; sp%20ace=%3Dv", "Accept", "application/json", "Accept-Language", "fr-CH, fr;q=0.9, en;q=0.8", "X-Requested-With", "XMLHttpRequest"}},
		{"client IP and HTTPS behind a trusted proxy", "GET", "/request", nil,
			[]string{"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https"}},
		{"redirect", "GET", "/redirect", nil, nil},
		{"streamed response", "GET", "/stream?n=2000", nil, nil},
		{"binary file", "GET", "/download", nil, nil},
		{"binary file, a byte range", "GET", "/download", nil, []string{"Range", "bytes=1000-68999"}},
		{"not found", "GET", "/nope", nil, nil},
		{"method not allowed", "DELETE", "/form", nil, nil},
		{"exception: 500", "GET", "/boom", nil, nil},
		{"PHP Error, not caught by HttpKernel: 500", "GET", "/boom?kind=error", nil, nil},
		{"form POST", "POST", "/form?from=query", []byte("name=Ann+Lee&tags[]=a&tags[]=b&empty=&x.y=1"), []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"multipart form without files", "POST", "/form", form, []string{"Content-Type", formType}},
		{"JSON POST", "POST", "/json", []byte(`{"b":2,"a":{"nested":[1,2,3]},"u":"ü"}`), []string{"Content-Type", "application/json"}},
		{"JSON PUT", "PUT", "/json", []byte(`{"put":true}`), []string{"Content-Type", "application/json"}},
		{"JSON POST, not an object", "POST", "/json", []byte(`[1,2`), []string{"Content-Type", "application/json"}},
		{"multipart upload, kept", "POST", "/upload?keep=1", upload, []string{"Content-Type", uploadType}},
	}
	for _, c := range cases {
		a := doFull(t, noRedirects, c.method, fpm+c.path, c.body, c.hdr...)
		b := doFull(t, noRedirects, c.method, drover+c.path, c.body, c.hdr...)
		na, nb := a.normalized(fpm), b.normalized(drover)
		if na != nb {
			t.Errorf("%s: %s %s answers differently\n%s", c.name, c.method, c.path, firstDifference(na, nb))
			continue
		}
		if w := want[c.name]; w != "" && !strings.Contains(string(a.body), w) {
			t.Errorf("%s: both answer %d without %q:\n%.2000s", c.name, a.status, w, a.body)
		}
		if c.name == "multipart upload, kept" && !strings.Contains(string(a.body), fmt.Sprintf(`{"field":"none","empty":true}],"moved":%d}`, len(report))) {
			t.Errorf("the upload was not moved, or the empty file input not seen, by both:\n%s", a.body)
		}
		t.Logf("%s: both %d, %s, %d bytes", c.name, a.status, a.header.Get("Content-Type"), len(a.body))
	}

	// Sessions and cookies: log in, come back twice, log out, come back.
	var sessions [2]string
	for i, base := range []string{fpm, drover} {
		got := walkSession(t, base, []walkStep{
			{"GET", "/me", ""},
			{"POST", "/login", "user=alice&theme=dark"},
			{"GET", "/me", ""},
			{"GET", "/me", ""},
			{"POST", "/logout", ""},
			{"GET", "/me", ""},
		})
		sessions[i] = strings.Join(got, "\n====\n")
		if !strings.Contains(got[2], `"session_user":"alice","current_user":"alice","visits":1,"theme":"dark"`) ||
			!strings.Contains(got[3], `"visits":2`) || !strings.Contains(got[5], `"session_user":null`) {
			t.Errorf("the session did not carry over as it should (%s):\n%s", base, sessions[i])
		}
	}
	if sessions[0] != sessions[1] {
		t.Errorf("a session answers differently\n%s", firstDifference(sessions[0], sessions[1]))
	}
}

// symfonyMe is what the Symfony app's /me says to client (its cookie jar, if any).
func symfonyMe(t *testing.T, client *http.Client, base string) map[string]any {
	t.Helper()
	a := doFull(t, client, "GET", base+"/me", nil)
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil || a.status != 200 {
		t.Fatalf("GET /me: %d %s (%v)", a.status, a.body, err)
	}
	return m
}

// jsonOf decodes a JSON answer of the Symfony app.
func jsonOf(t *testing.T, a fullAnswer) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil || a.status != 200 {
		t.Fatalf("want a 200 JSON answer, got %d %s (%v)", a.status, a.body, err)
	}
	return m
}

// One Symfony worker serves user A, then user B: B's requests never see
// A's login, session, cookies or per-request singleton, nor a setting A's
// request changed (services_resetter); kernel.terminate ran for A's
// request before B's. What the reset does not cover, as docs/php.md says:
// a static array and a service without reset() keep A's data. A leak the
// reset cannot see is caught by worker.max_memory: the worker asks for a
// successor before it passes the limit, and no request fails.
func TestSymfonyStateBetweenRequests(t *testing.T) {
	app := symfonyApp(t)
	s := startServer(t, symfonyWorkers(1, app, "  max_memory: 64M\n"))
	base := "http://" + tcpAddr(s.addrs[0])
	logs := s.subscribe()
	jarA, _ := cookiejar.New(nil)
	alice := &http.Client{Timeout: 30 * time.Second, Jar: jarA}
	bob := &http.Client{Timeout: 30 * time.Second} // no cookies
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	pid := jsonOf(t, doFull(t, bob, "GET", base+"/state/terminated", nil))["pid"]

	// A logs in and is known; B, next on the same worker, is nobody.
	if m := jsonOf(t, doFull(t, alice, "POST", base+"/login", []byte("user=alice&theme=dark"), form...)); m["logged_in"] != "alice" {
		t.Fatalf("login: %v", m)
	}
	if m := symfonyMe(t, alice, base); m["session_user"] != "alice" || m["current_user"] != "alice" || m["theme"] != "dark" {
		t.Fatalf("alice's /me: %v", m)
	}
	if m := symfonyMe(t, bob, base); m["session_user"] != nil || m["current_user"] != nil || m["theme"] != nil || m["visits"] != nil {
		t.Fatalf("bob's /me, right after alice's on the same worker, shows her state: %v", m)
	}
	if m := jsonOf(t, doFull(t, bob, "GET", base+"/state/terminated", nil)); m["last"] != "GET /me 200" || m["pid"] != pid {
		t.Fatalf("kernel.terminate of the request before (GET /me 200, pid %v): %v", pid, m)
	}

	// Each demo: what A's request left, as B's next request finds it.
	for _, c := range []struct {
		what, found string
		reset       bool
	}{
		{"singleton", "<nil>", true}, // CurrentUser implements ResetInterface
		{"config", "Hello", true},    // Settings too
		{"holder", "alice", false},   // LastVisitor has no reset()
	} {
		jsonOf(t, doFull(t, alice, "GET", base+"/state/"+c.what+"?as=alice", nil))
		m := jsonOf(t, doFull(t, bob, "GET", base+"/state/"+c.what, nil))
		if got := fmt.Sprint(m["found"]); got != c.found {
			t.Errorf("/state/%s: B's request found %q, want %q (reset by services_resetter: %v)", c.what, got, c.found, c.reset)
		}
	}
	jsonOf(t, doFull(t, alice, "GET", base+"/state/static?as=alice", nil))
	if m := jsonOf(t, doFull(t, bob, "GET", base+"/state/static?as=bob", nil)); fmt.Sprint(m["seen"]) != "[alice bob]" {
		t.Errorf("a static array is not reset: B's request should find A's entry, found %v", m["seen"])
	}
	if m := symfonyMe(t, bob, base); m["current_user"] != nil || m["session_user"] != nil {
		t.Fatalf("bob's /me after the demos: %v", m)
	}

	// 4 MiB more per request, kept in a static: the worker retires itself
	// before 64M, a successor takes over, no request fails.
	var retiredAt int
	for i := 1; i <= 40 && retiredAt == 0; i++ {
		m := jsonOf(t, doFull(t, bob, "GET", base+"/state/memory?mb=4", nil))
		if m["pid"] != pid {
			retiredAt = i
		}
	}
	if retiredAt == 0 {
		t.Fatalf("the worker holding 160 MiB more was not replaced (max_memory 64M)")
	}
	e := s.waitLog(logs, 10*time.Second, "the retirement line", func(e logEntry) bool {
		return strings.Contains(e.str("output"), "would pass max_memory 64.0MiB") && strings.Contains(e.str("output"), "asking drover for a successor")
	})
	t.Logf("replaced after %d requests: %s", retiredAt, e.str("output"))
	// The successor is a fresh process: the static is empty again.
	if m := jsonOf(t, doFull(t, bob, "GET", base+"/state/static?as=carol", nil)); fmt.Sprint(m["seen"]) != "[carol]" {
		t.Errorf("the successor's static array: %v", m["seen"])
	}
}

// walkStep is one request of walkSession; a body is sent as a form.
type walkStep struct{ method, path, body string }

// walkSession sends steps to base in order with one cookie jar (a user's
// browser, redirects not followed) and returns each answer normalized.
func walkSession(t *testing.T, base string, steps []walkStep) []string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Timeout: 30 * time.Second, Jar: jar, CheckRedirect: noRedirects.CheckRedirect}
	var got []string
	for _, st := range steps {
		var body []byte
		var hdr []string
		if st.body != "" {
			body, hdr = []byte(st.body), []string{"Content-Type", "application/x-www-form-urlencoded"}
		}
		got = append(got, doFull(t, client, st.method, base+st.path, body, hdr...).normalized(base))
	}
	return got
}
