package e2e

import (
	"crypto/sha1"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// laravelApp is the absolute path of examples/php/laravel.
func laravelApp(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/share/php/Illuminate/Foundation/Application.php"); err != nil {
		t.Fatal("the Laravel example needs Debian's Laravel 8 packages: apt-get install php-laravel-framework php-sqlite3 (.ci/run does it)")
	}
	app, err := filepath.Abs("../examples/php/laravel")
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// laravelWorkers is a config in which n PHP workers run the Laravel app
// with drover's entry, worker/php/laravel-worker.php (the app's root as its
// argument); extra goes into the worker section.
func laravelWorkers(n int, app, extra string) string {
	entry := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(app))), "worker", "php", "laravel-worker.php")
	return fmt.Sprintf("worker_num: %d\nworker:\n  cmd: [php, %s, %s]\n  launch: exec\n%slisteners:\n%s", n, entry, app, extra, httpListener)
}

// The Laravel 8 example (Debian's packages), its public/index.php the
// skeleton's, answers the same bytes under drover (laravel-worker.php, no
// code of the app's own) as under nginx + php-fpm, apart from Date,
// Expires, encrypted cookie values and the framing: a Blade view, JSON,
// query arrays, server vars, client IP and HTTPS flag behind a trusted
// proxy, a redirect, a streamed response, a download and a byte range of
// it, 404, 405, 419 (CSRF) and 500 pages (an exception, a PHP warning
// Laravel turns into one, a TypeError), form, JSON and multipart POSTs,
// and a login with a session and a cookie across requests.
func TestLaravelSameUnderDroverAndPHPFPM(t *testing.T) {
	app := laravelApp(t)
	fpm := startFPM(t, filepath.Join(app, "public", "index.php"))
	s := startServer(t, laravelWorkers(2, app, ""))
	drover := "http://" + tcpAddr(s.addrs[0])

	report := strings.Repeat("\x00\x01binary\xfe\xff report line\r\n", 12000)
	upload, uploadType := multipartParts([3]string{"title", "", "Q3 report"}, [3]string{"tags[]", "", "x"}, [3]string{"tags[]", "", "y"},
		[3]string{"doc", "report.bin", report}, [3]string{"extra[]", "a.txt", "first"}, [3]string{"extra[]", "b.txt", "second"})
	form, formType := multipartParts([3]string{"user", "", "bob"}, [3]string{"list[a]", "", "1"})
	urlencoded := []string{"Content-Type", "application/x-www-form-urlencoded"}

	want := map[string]string{
		"a Blade view":            "<h1>Hello, drover!</h1>",
		"JSON from a controller":  `{"hello":"drover"}`,
		"request facts":           `"query":{"a":["1","2"],"b":{"c":"d"},"e":"f"}`,
		"client IP and HTTPS":     `"ip":"203.0.113.7","secure":true`,
		"redirect":                `Redirecting to http://HOST/hello?name=redirected`,
		"streamed response":       "line 1000 of 1000\n",
		"not found":               "<title>Not Found</title>",
		"CSRF: 419":               "<title>Page Expired</title>",
		"exception: 500":          "<title>Server Error</title>",
		"PHP warning: 500":        "<title>Server Error</title>",
		"TypeError: 500":          "<title>Server Error</title>",
		"form POST":               `"fields":{"name":"Ann Lee","tags":["a","b"],"empty":null,"x_y":"1"}`,
		"JSON POST":               `"input_keys":["b","a","u"]`,
		"multipart upload, kept":  fmt.Sprintf(`"sha1":"%x"`, sha1.Sum([]byte(report))),
		"multipart form":          `"fields":{"user":"bob","list":{"a":"1"}}`,
		"method not allowed: 405": `The server returned a "405 Method Not Allowed".`,
	}
	cases := []struct {
		name, method, path string
		body               []byte
		hdr                []string
	}{
		{"a Blade view", "GET", "/?name=drover", nil, nil},
		{"JSON from a controller", "GET", "/hello?name=drover", nil, nil},
		{"HEAD", "HEAD", "/hello?name=drover", nil, nil},
		{"request facts", "GET", "/request?a[]=1&a[]=2&b[c]=d&e=%20f", nil,
			[]string{"Accept", "application/json", "X-Requested-With", "XMLHttpRequest"}},
		{"client IP and HTTPS", "GET", "/request", nil, []string{"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https"}},
		{"redirect", "GET", "/redirect", nil, nil},
		{"streamed response", "GET", "/stream?n=1000", nil, nil},
		{"download", "GET", "/download", nil, nil},
		{"download, a byte range", "GET", "/download", nil, []string{"Range", "bytes=1000-68999"}},
		{"not found", "GET", "/nope", nil, nil},
		{"method not allowed: 405", "DELETE", "/form", nil, nil},
		{"CSRF: 419", "POST", "/profile", []byte("name=x"), urlencoded},
		{"exception: 500", "GET", "/boom", nil, nil},
		{"PHP warning: 500", "GET", "/boom?kind=warning", nil, nil},
		{"TypeError: 500", "GET", "/boom?kind=error", nil, nil},
		{"form POST", "POST", "/form?from=query", []byte("name=+Ann+Lee+&tags[]=a&tags[]=b&empty=&x.y=1"), urlencoded},
		{"multipart form", "POST", "/form", form, []string{"Content-Type", formType}},
		{"JSON POST", "POST", "/json", []byte(`{"b":2,"a":{"nested":[1,2,3]},"u":"ü"}`), []string{"Content-Type", "application/json"}},
		{"JSON PUT", "PUT", "/json", []byte(`{"put":true}`), []string{"Content-Type", "application/json"}},
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
		if w := want[c.name]; w != "" && !strings.Contains(normalizeText(string(a.body), strings.TrimPrefix(fpm, "http://")), w) {
			t.Errorf("%s: both answer %d without %q:\n%.2000s", c.name, a.status, w, a.body)
		}
		t.Logf("%s: both %d, %s, %d bytes", c.name, a.status, a.header.Get("Content-Type"), len(a.body))
	}

	// A login, a session and a cookie: log in, come back twice, log out, come back.
	var sessions [2]string
	for i, base := range []string{fpm, drover} {
		got := walkSession(t, base, []walkStep{
			{"GET", "/me", ""},
			{"POST", "/login", "name=alice&password=wrong"},
			{"POST", "/login", "name=alice&password=alice-secret&theme=dark"},
			{"GET", "/me", ""},
			{"GET", "/me", ""},
			{"POST", "/logout", ""},
			{"GET", "/me", ""},
		})
		sessions[i] = strings.Join(got, "\n====\n")
		if !strings.Contains(got[3], `{"user":"alice","current_user":"alice","visits":1,"theme":"dark"}`) ||
			!strings.Contains(got[4], `"visits":2`) || !strings.Contains(got[6], `{"user":null,"current_user":null,"visits":null,"theme":null}`) {
			t.Errorf("the login did not carry over as it should (%s):\n%s", base, sessions[i])
		}
	}
	if sessions[0] != sessions[1] {
		t.Errorf("a login answers differently\n%s", firstDifference(sessions[0], sessions[1]))
	}
}

// One Laravel worker serves user A, then user B: B's requests never see
// A's login, session, cookie, per-request singleton (a singleton listed in
// config/drover.php's flush), a config value A's request changed, or the
// database transaction A's request left open (rolled back, and logged);
// terminate() ran for A's request before B's. Not reset, as docs/php.md
// says: a static array and a singleton resolved at boot that is not listed
// in drover.flush. A leak is caught by worker.max_memory.
func TestLaravelStateBetweenRequests(t *testing.T) {
	app := laravelApp(t)
	s := startServer(t, laravelWorkers(1, app, "  max_memory: 64M\n"))
	base := "http://" + tcpAddr(s.addrs[0])
	logs := s.subscribe()
	jarA, _ := cookiejar.New(nil)
	alice := &http.Client{Timeout: 30 * time.Second, Jar: jarA}
	bob := &http.Client{Timeout: 30 * time.Second} // no cookies
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	pid := jsonOf(t, doFull(t, bob, "GET", base+"/state/terminated", nil))["pid"]

	if m := jsonOf(t, doFull(t, alice, "POST", base+"/login", []byte("name=alice&password=alice-secret&theme=dark"), form...)); m["logged_in"] != "alice" {
		t.Fatalf("login: %v", m)
	}
	if m := jsonOf(t, doFull(t, alice, "GET", base+"/me", nil)); fmt.Sprint(m["user"], m["current_user"], m["theme"]) != "alicealicedark" {
		t.Fatalf("alice's /me: %v", m)
	}
	if m := jsonOf(t, doFull(t, bob, "GET", base+"/me", nil)); m["user"] != nil || m["current_user"] != nil || m["theme"] != nil || m["visits"] != nil {
		t.Fatalf("bob's /me, right after alice's on the same worker, shows her state: %v", m)
	}
	jsonOf(t, doFull(t, alice, "GET", base+"/state/static?as=alice", nil))
	if m := jsonOf(t, doFull(t, bob, "GET", base+"/state/terminated", nil)); m["last"] != "GET /state/static" || m["pid"] != pid {
		t.Fatalf("terminate() of the request before (GET /state/static, pid %v): %v", pid, m)
	}

	for _, c := range []struct {
		what, found string
		reset       bool
	}{
		{"singleton", "<nil>", true}, // CurrentUser: resolved at boot, listed in drover.flush
		{"config", "Hello", true},    // config(['app.greeting' => …]) lasts for the request
		{"transaction", "0", true},   // DB::beginTransaction() left open: rolled back
		{"holder", "alice", false},   // LastVisitor: resolved at boot, not listed
	} {
		jsonOf(t, doFull(t, alice, "GET", base+"/state/"+c.what+"?as=alice", nil))
		m := jsonOf(t, doFull(t, bob, "GET", base+"/state/"+c.what, nil))
		if got := fmt.Sprint(m["found"]); got != c.found {
			t.Errorf("/state/%s: B's request found %q, want %q (reset: %v)", c.what, got, c.found, c.reset)
		}
	}
	s.waitLog(logs, 5*time.Second, "the rolled-back transaction", func(e logEntry) bool {
		return e.str("output") == `the request left 1 transaction(s) open on database connection "sqlite": rolled back (commit or roll back in the request)`
	})
	jsonOf(t, doFull(t, alice, "GET", base+"/state/static?as=alice2", nil))
	if m := jsonOf(t, doFull(t, bob, "GET", base+"/state/static?as=bob", nil)); fmt.Sprint(m["seen"]) != "[alice alice2 bob]" {
		t.Errorf("a static array is not reset: B's request should find A's entries, found %v", m["seen"])
	}
	if m := jsonOf(t, doFull(t, bob, "GET", base+"/me", nil)); m["user"] != nil || m["current_user"] != nil {
		t.Fatalf("bob's /me after the demos: %v", m)
	}

	var retiredAt int
	for i := 1; i <= 40 && retiredAt == 0; i++ {
		if m := jsonOf(t, doFull(t, bob, "GET", base+"/state/memory?mb=4", nil)); m["pid"] != pid {
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
}
