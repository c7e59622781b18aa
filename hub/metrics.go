package hub

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the hub's Prometheus collectors. They always exist; they are
// exported only when Config.Registerer is set.
type metrics struct {
	sockets prometheus.GaugeFunc
	tickets prometheus.GaugeFunc
	events  prometheus.Counter
	slow    prometheus.Counter
	nudges  prometheus.Counter
	resyncs prometheus.Counter

	refusedFull prometheus.Counter
}

// newMetrics makes the collectors; sockets and tickets are read at each
// scrape (the maps are sharded, so no single lock orders their updates).
func newMetrics(reg prometheus.Registerer, log *slog.Logger, sockets, tickets func() float64) *metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "loginhub", Subsystem: "hub", Name: name, Help: help}
	}
	m := &metrics{
		sockets: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("open_sockets", "WebSocket connections open on this node.")), sockets),
		tickets: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("watched_tickets", "Tickets watched or waited on on this node.")), tickets),
		events:  prometheus.NewCounter(prometheus.CounterOpts(opts("events_sent_total", "State and error events written to sockets."))),
		slow:    prometheus.NewCounter(prometheus.CounterOpts(opts("slow_consumers_dropped_total", "Sockets dropped because their send queue was full."))),
		nudges:  prometheus.NewCounter(prometheus.CounterOpts(opts("nudges_received_total", "Ticket nudges (a version, or the ticket itself) received from the broker."))),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts(opts("resyncs_total", "Re-reads of every watched ticket after a broker reconnect."))),

		refusedFull: prometheus.NewCounter(prometheus.CounterOpts(opts("sockets_refused_full_total", "WebSocket upgrades refused with 503 because the node was at its socket cap."))),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sockets, m.tickets, m.events, m.slow, m.nudges, m.resyncs, m.refusedFull} {
			if err := reg.Register(c); err != nil {
				log.Warn("hub: registering a metric failed", "err", err)
			}
		}
	}
	return m
}
