"""Prometheus metrics of one server (its own registry, so tests can run several servers in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)


class Metrics:
    """Counters and histograms the engine feeds (its ``stats`` observer) and the HTTP layer counts into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tongues_requests", "HTTP requests answered, by endpoint and status code",
                                ["endpoint", "status"], registry=r)
        self.prompt_tokens = Counter("tongues_prompt_tokens", "Prompt tokens admitted", registry=r)
        self.generation_tokens = Counter("tongues_generation_tokens", "Tokens generated", registry=r)
        self.finished_sequences = Counter("tongues_sequences_finished", "Sequences finished", registry=r)
        self.running = Gauge("tongues_requests_running", "Sequences holding a cache row", registry=r)
        self.waiting = Gauge("tongues_requests_waiting", "Sequences waiting for a cache row", registry=r)
        self.ttft = Histogram("tongues_time_to_first_token_seconds", "Time from arrival to first token",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.itl = Histogram("tongues_inter_token_latency_seconds", "Time between consecutive tokens of a sequence",
                             buckets=LATENCY_BUCKETS, registry=r)

    def watch(self, engine) -> None:
        """Read the running and waiting counts from ``engine`` at each scrape."""
        self.running.set_function(lambda: engine.num_running)
        self.waiting.set_function(lambda: engine.num_waiting)

    # -- the engine's stats observer --------------------------------------------------------------
    def request(self, prompt_tokens: int) -> None:
        self.prompt_tokens.inc(prompt_tokens)

    def first_token(self, seconds: float) -> None:
        self.ttft.observe(seconds)
        self.generation_tokens.inc()

    def inter_token(self, seconds: float) -> None:
        self.itl.observe(seconds)
        self.generation_tokens.inc()

    def finished(self, generated_tokens: int) -> None:
        self.finished_sequences.inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)
