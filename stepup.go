package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loginhub/loginhub/authcore"
)

// stepUpMetrics counts the step-up verifiers' answers in reg as
// loginhub_stepup_checks_total{verifier, method, outcome} and times the
// vendor calls as loginhub_stepup_check_seconds{verifier}.
func stepUpMetrics(reg prometheus.Registerer) func(authcore.StepUpCheck) {
	checks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loginhub_stepup_checks_total",
		Help: "Answers of step-up verifiers (wechat_face, ...) about checks: outcome pass (the session got the method), fail (the check failed: no match, no live face, cancelled), rejected (a passed result not of this check: another user's, too old, reused), pending (not finished on the phone) or error (the vendor failed).",
	}, []string{"verifier", "method", "outcome"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "loginhub_stepup_check_seconds",
		Help:    "Time of the vendor's answer about a step-up check, per verifier.",
		Buckets: prometheus.DefBuckets,
	}, []string{"verifier"})
	reg.MustRegister(checks, seconds)
	return func(c authcore.StepUpCheck) {
		checks.WithLabelValues(c.Verifier, c.Method, c.Outcome).Inc()
		seconds.WithLabelValues(c.Verifier).Observe(c.Duration.Seconds())
	}
}
