package main

import "testing"

func TestNames(t *testing.T) {
	for _, c := range []struct{ in, typed, api string }{
		{"SQLNODE1", "SQLNODE1", "SQLNODE1"},
		{"SQL/NODE 1", "SQL%2fNODE 1", "SQL%2fNODE 1"},
		{"Ö'NODE%2", "Ö'NODE%252", "Ö'NODE%252"},
		{`a/b\c%d`, "a%2fb%5cc%25d", "a%2fb%5cc%25d"},
		{"x%2Fy", "x%252Fy", "x%2Fy"},
		{"x%41y", "x%2541y", "x%41y"},
		{"50%", "50%25", "50%25"},
		{"%%2f", "%25%252f", "%25%2f"},
	} {
		if got := escapeName(c.in); got != c.typed {
			t.Errorf("escapeName(%q) = %q, want %q", c.in, got, c.typed)
		}
		if got := unescapeName(escapeName(c.in)); got != c.in {
			t.Errorf("unescapeName(escapeName(%q)) = %q", c.in, got)
		}
		if got := vcName(c.in); got != c.api {
			t.Errorf("vcName(%q) = %q, want %q", c.in, got, c.api)
		}
		if got := vcName(vcName(c.in)); got != c.api {
			t.Errorf("vcName is not idempotent on %q: %q", c.in, got)
		}
		if got := vcName(c.typed); got != c.typed {
			t.Errorf("vcName(escapeName(%q)) = %q, want %q", c.in, got, c.typed)
		}
	}
	if got := unescapeName("a%2Fb%5Cc%41%252f"); got != `a/b\c%41%2f` {
		t.Errorf("unescapeName: %q", got)
	}
	if got := guestHostName("Ö'NODE%2"); got != "node-2.lab.local" {
		t.Errorf("guestHostName: %q", got)
	}
}
