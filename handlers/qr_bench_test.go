package handlers

import (
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

const benchQRURL = "https://login.example.com/s/k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func BenchmarkQRSVG(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := renderSVG(benchQRURL); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQRPNG(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qrcode.Encode(benchQRURL, qrcode.Medium, defaultPNGSize); err != nil {
			b.Fatal(err)
		}
	}
}
