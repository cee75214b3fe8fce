package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startFPM serves script with nginx + php-fpm (2 static children) on a free
// port, as a php-fpm user would, and returns its base URL. Both processes
// are stopped when the test ends.
func startFPM(t *testing.T, script string) string {
	t.Helper()
	fpm, _ := filepath.Glob("/usr/sbin/php-fpm*")
	if _, err := exec.LookPath("nginx"); err != nil || len(fpm) == 0 {
		t.Fatal("nginx and php-fpm are needed to compare with drover: apt-get install nginx-light php-fpm (.ci/run does it)")
	}
	dir, err := os.MkdirTemp("", "fpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u, _ := user.Current()
	os.WriteFile(filepath.Join(dir, "fpm.conf"), []byte(fmt.Sprintf(`[global]
error_log = %[1]s/fpm.log
daemonize = no
[www]
listen = %[1]s/fpm.sock
pm = static
pm.max_children = 2
catch_workers_output = yes
`, dir)), 0o644)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx.err;
daemon off;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s; fastcgi_temp_path %[1]s; proxy_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  client_max_body_size 8m;
  server {
    listen %[2]s;
    server_name 127.0.0.1;
    location / {
      fastcgi_pass unix:%[1]s/fpm.sock;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME %[3]s;
      fastcgi_param SCRIPT_NAME /index.php;
      # Debian's fastcgi_params send $host (no port) as HTTP_HOST; send
      # the Host header as the client wrote it, as drover does.
      fastcgi_param HTTP_HOST $http_host;
    }
  }
}
`, dir, addr, script)), 0o644)
	args := []string{"-y", filepath.Join(dir, "fpm.conf"), "-F"}
	if os.Getuid() == 0 {
		args = append(args, "-R")
	}
	for _, cmd := range []*exec.Cmd{
		exec.Command(fpm[0], args...),
		exec.Command("nginx", "-c", filepath.Join(dir, "nginx.conf"), "-g", "user "+u.Username+";"),
	} {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
			if t.Failed() {
				t.Logf("%s output:\n%s", cmd.Path, out.String())
			}
		})
	}
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx + php-fpm not answering on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a port until it accepts
	}
}

type answer struct {
	status int
	ctype  string
	extra  string
	body   string
}

func ask(t *testing.T, method, url, ctype string, body []byte, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Served-By"), string(b)}
}

// The Slim example answers the same under drover (resident PHP workers,
// Drover\Psr7\Worker) as under nginx + php-fpm running the same front
// controller: GET with a query and route argument, POST JSON, POST
// multipart with a file upload, cookies and headers, 404 and 405 pages.
func TestSlimSameUnderDroverAndPHPFPM(t *testing.T) {
	if _, err := os.Stat("/usr/share/php/Slim/App.php"); err != nil {
		t.Fatal("the Slim example needs Debian's php-slim: apt-get install php-slim (.ci/run does it)")
	}
	index, err := filepath.Abs("../examples/php/slim/index.php")
	if err != nil {
		t.Fatal(err)
	}
	fpm := startFPM(t, index)
	s := startServer(t, phpWorkers(2, index, httpListener, ""))
	drover := "http://" + tcpAddr(s.addrs[0])

	form, formType := multipartForm([]string{"title", "report", "tags[]", "x", "tags[]", "y"}, "doc", "report.bin", bytes.Repeat([]byte{0, 1, 2, 254, 255}, 50000))

	cases := []struct {
		name, method, path, ctype string
		body                      []byte
		hdr                       map[string]string
	}{
		{"GET with query and argument", "GET", "/hello/drover?greeting=Hi", "", nil, nil},
		{"GET without query", "GET", "/hello/world", "", nil, nil},
		{"POST JSON", "POST", "/json", "application/json", []byte(`{"b":2,"a":{"nested":[1,2,3]},"u":"ü"}`), nil},
		{"POST JSON, not an object", "POST", "/json", "application/json", []byte(`[1,2`), nil},
		{"POST multipart with a file", "POST", "/upload", formType, form, nil},
		{"cookies, headers, array query", "GET", "/info?x[]=1&x[]=2&y=%20z", "", nil,
			map[string]string{"Cookie": "sid=abc%3D; theme=dark", "Accept": "text/plain"}},
		{"route group with a pattern", "GET", "/api/orders/42", "", nil, nil},
		{"not found", "GET", "/nope", "", nil, nil},
		{"method not allowed", "DELETE", "/hello/x", "", nil, nil},
	}
	for _, c := range cases {
		a := ask(t, c.method, fpm+c.path, c.ctype, c.body, c.hdr)
		b := ask(t, c.method, drover+c.path, c.ctype, c.body, c.hdr)
		// Absolute links name the server's own address.
		a.body = strings.ReplaceAll(a.body, strings.TrimPrefix(fpm, "http://"), "HOST")
		b.body = strings.ReplaceAll(b.body, strings.TrimPrefix(drover, "http://"), "HOST")
		if a != b {
			t.Errorf("%s: %s %s answers differently\nphp-fpm: %d %q %q\n%s\ndrover:  %d %q %q\n%s",
				c.name, c.method, c.path, a.status, a.ctype, a.extra, a.body, b.status, b.ctype, b.extra, b.body)
			continue
		}
		if c.name == "GET with query and argument" && a.body != "Hi, drover!" {
			t.Errorf("both answer %q to %s", a.body, c.path)
		}
		if c.name == "POST multipart with a file" && !strings.Contains(a.body, `"size":250000`) {
			t.Errorf("the upload was not seen by either: %s", a.body)
		}
		t.Logf("%s: both %d %s, %d bytes", c.name, a.status, a.ctype, len(a.body))
	}
}
