package config

// Admin is the admin listener: HTTP served by the master itself (never a
// worker) with /metrics, /health, /ready and /status. Off unless Address
// is set.
type Admin struct {
	// Address is tcp://host:port or unix:///path (unix://rel/path against
	// the config directory). Empty (default): no admin listener.
	Address string `yaml:"address" json:"address"`

	// Network is "tcp" or "unix" and Addr the address to bind, set by
	// validation when Address is.
	Network string `yaml:"-" json:"network"`
	Addr    string `yaml:"-" json:"addr"`
}

// admin checks the admin listener's address: tcp or unix, and not the
// address of a listener.
func (v *validator) admin(c *Config) {
	a := &c.Admin
	a.Network, a.Addr = "", ""
	if a.Address == "" {
		if v.present("admin", false) && !v.present("admin.address", false) {
			v.fail("admin.address", "required when admin is given (e.g. admin: {address: tcp://127.0.0.1:9180}; remove admin: to turn the admin listener off)")
		}
		return
	}
	network, addr, problem := v.address(a.Address)
	switch {
	case problem != "":
		v.fail("admin.address", "%s", problem)
		return
	case network == "udp":
		v.fail("admin.address", "%s: the admin listener speaks HTTP (want tcp://host:port or unix:///path)", show(a.Address))
		return
	}
	for i, l := range c.Listeners {
		// Port 0 too: an upgrade hands sockets over by address, and two
		// sockets bound to one host's port 0 cannot be told apart there.
		if l.Network == network && l.Addr == addr {
			v.fail("admin.address", "%s is the address of listeners[%d] (give the admin listener its own port or path)", show(a.Address), i)
			return
		}
	}
	a.Network, a.Addr = network, addr
}
