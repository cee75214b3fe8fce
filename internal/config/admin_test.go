package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestAdmin(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name          string
		yaml          string
		network, addr string // want, when err is ""
		err           string
	}{
		{name: "off by default", yaml: minimal},
		{name: "empty address is off", yaml: minimal + "admin: {address: \"\"}\n"},
		{name: "tcp", yaml: minimal + "admin: {address: tcp://127.0.0.1:9180}\n", network: "tcp", addr: "127.0.0.1:9180"},
		{name: "all interfaces", yaml: minimal + "admin:\n  address: tcp://:9180\n", network: "tcp", addr: ":9180"},
		{name: "unix, relative", yaml: minimal + "admin: {address: unix://run/admin.sock}\n", network: "unix",
			addr: filepath.Join(fx.conf, "run/admin.sock")},
		{name: "port 0 beside a listener on port 0",
			yaml: "worker: {cmd: [../bin/echo]}\nlisteners: [{address: tcp://127.0.0.1:0, protocol: http}]\nadmin: {address: tcp://127.0.0.1:0}\n",
			err:  `drover.yaml:3: admin.address: tcp://127.0.0.1:0 is the address of listeners[0] (give the admin listener its own port or path)`},
		{name: "no address", yaml: minimal + "admin: {}\n",
			err: `drover.yaml:6: admin.address: required when admin is given (e.g. admin: {address: tcp://127.0.0.1:9180}; remove admin: to turn the admin listener off)`},
		{name: "unknown key", yaml: minimal + "admin: {adress: tcp://127.0.0.1:9180}\n",
			err: `drover.yaml:6: admin: unknown key "adress" (did you mean "address"?)`},
		{name: "udp", yaml: minimal + "admin: {address: udp://127.0.0.1:9180}\n",
			err: `drover.yaml:6: admin.address: udp://127.0.0.1:9180: the admin listener speaks HTTP (want tcp://host:port or unix:///path)`},
		{name: "no scheme", yaml: minimal + "admin:\n  address: 127.0.0.1:9180\n",
			err: `drover.yaml:7: admin.address: 127.0.0.1:9180 has no scheme (want tcp://host:port, unix:///path/to.sock or udp://host:port)`},
		{name: "a listener's address", yaml: minimal + "admin: {address: tcp://127.0.0.1:9501}\n",
			err: `drover.yaml:6: admin.address: tcp://127.0.0.1:9501 is the address of listeners[0] (give the admin listener its own port or path)`},
		{name: "not a mapping", yaml: minimal + "admin: tcp://127.0.0.1:9180\n",
			err: `drover.yaml:6: admin: want a mapping (indented key: value lines), got "tcp://127.0.0.1:9180"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fx.parse(tt.yaml)
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("got error %v\nwant %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Admin.Network != tt.network || c.Admin.Addr != tt.addr {
				t.Errorf("admin resolved to %q %q, want %q %q", c.Admin.Network, c.Admin.Addr, tt.network, tt.addr)
			}
		})
	}
}
