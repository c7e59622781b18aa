package authcore_test

import (
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

func TestVault(t *testing.T) {
	old, fresh := authcore.RandomKey("d1"), authcore.RandomKey("d2")
	v1, err := authcore.NewVault([]authcore.Key{old})
	if err != nil {
		t.Fatal(err)
	}
	sealed := v1.Seal("u1", "phone", "13800001234")
	if strings.Contains(sealed, "13800001234") || !strings.HasPrefix(sealed, "d1.") {
		t.Fatalf("sealed value %q", sealed)
	}
	if got, err := v1.Open("u1", "phone", sealed); err != nil || got != "13800001234" {
		t.Fatalf("Open: %q, %v", got, err)
	}
	for name, open := range map[string]func() (string, error){
		"another owner": func() (string, error) { return v1.Open("u2", "phone", sealed) },
		"another field": func() (string, error) { return v1.Open("u1", "id_number", sealed) },
		"tampered":      func() (string, error) { return v1.Open("u1", "phone", sealed[:len(sealed)-2]+"AA") },
		"garbage":       func() (string, error) { return v1.Open("u1", "phone", "nonsense") },
	} {
		if _, err := open(); err == nil {
			t.Errorf("%s: opened", name)
		}
	}

	// Rotation: the new ring seals with d2 and still opens d1 values.
	v2, _ := authcore.NewVault([]authcore.Key{fresh, old})
	if got, err := v2.Open("u1", "phone", sealed); err != nil || got != "13800001234" {
		t.Fatalf("old value under the rotated ring: %q, %v", got, err)
	}
	resealed, changed, err := v2.Reseal("u1", "phone", sealed)
	if err != nil || !changed || !strings.HasPrefix(resealed, "d2.") {
		t.Fatalf("Reseal: %q %v %v", resealed, changed, err)
	}
	if _, changed, _ := v2.Reseal("u1", "phone", resealed); changed {
		t.Fatal("Reseal of a current value changed it")
	}
	v3, _ := authcore.NewVault([]authcore.Key{fresh})
	if _, err := v3.Open("u1", "phone", sealed); err == nil {
		t.Fatal("a value sealed under a dropped key opened")
	}
	if _, err := authcore.NewVault([]authcore.Key{{ID: "k", Secret: make([]byte, 16)}}); err == nil {
		t.Fatal("a 16-byte data key was accepted")
	}
}
