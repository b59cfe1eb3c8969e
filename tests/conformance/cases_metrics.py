"""Conformance cases: Metric (proto/sidecar.proto, docs/metrics.md)."""

from harness import case, eq, send_invalid


def metric(pb, **fields):
    base = dict(type=pb.Metric.METRIC_TYPE_COUNT, name="conf.hits", value=1)
    base.update(fields)
    return pb.Metric(**base)


@case
def metric_rules(ctx):
    """Each rule of Metric refuses the action whole, naming the field; the
    connection stays open and nothing is aggregated."""
    pb = ctx.pb
    c = ctx.conn()
    points = ctx.stats()["metrics"]["points"]
    for fields, part in (
        (dict(type=pb.Metric.METRIC_TYPE_UNSPECIFIED), "Metric.type"),
        (dict(type=9), "Metric.type"),
        (dict(name=""), "Metric.name"),
        (dict(name="9lives"), "Metric.name"),
        (dict(name="a b"), "Metric.name"),
        (dict(name="a" * 201), "Metric.name"),
        (dict(value=float("nan")), "Metric.value"),
        (dict(value=float("inf")), "Metric.value"),
        (dict(tags="a,,b"), "Metric.tags"),
        (dict(tags="a|b"), "Metric.tags"),
        (dict(tags="1a"), "Metric.tags"),
        (dict(tags="a" * 201), "Metric.tags"),
        (dict(tags=",".join("t%d" % i for i in range(65))), "Metric.tags"),
        (dict(tags=",".join("t" * 199 for _ in range(11))), "Metric.tags"),
        (dict(sample_rate=0), "Metric.sample_rate"),
        (dict(sample_rate=1.5), "Metric.sample_rate"),
        (dict(set_member="x"), "Metric.set_member"),
        (dict(type=pb.Metric.METRIC_TYPE_SET, set_member=""), "Metric.set_member"),
        (dict(type=pb.Metric.METRIC_TYPE_SET, set_member="a:b"), "Metric.set_member"),
    ):
        send_invalid(ctx, c, "metric", part, metric=metric(pb, **fields))
    eq(ctx.stats()["metrics"]["points"], points, "nothing aggregated")


@case
def metric_counted_and_unsent_counted(ctx):
    """Valid points are counted as actions and points; a Flush with
    deliver_now drains them, and with no DogStatsD socket to take them
    every line is counted as unsent."""
    pb = ctx.pb
    c = ctx.conn()
    before = ctx.stats()
    for t in (pb.Metric.METRIC_TYPE_COUNT, pb.Metric.METRIC_TYPE_GAUGE, pb.Metric.METRIC_TYPE_RATE,
              pb.Metric.METRIC_TYPE_HISTOGRAM, pb.Metric.METRIC_TYPE_DISTRIBUTION, pb.Metric.METRIC_TYPE_SET):
        c.send(metric=metric(pb, type=t, name="conf.t%d" % t, tags="b:1,a:2,b:1", sample_rate=0.5))
    c.send(metric=metric(pb, type=pb.Metric.METRIC_TYPE_SET, name="conf.t6", tags="a:2,b:1",
                         set_member="m"))
    c.flush(deliver_now=False)
    mid = ctx.stats()
    eq(mid["actions"]["metric"], before["actions"]["metric"] + 7, "actions.metric")
    eq(mid["metrics"]["points"], before["metrics"]["points"] + 7, "metrics.points")
    eq(mid["metrics"]["contexts"], 6, "one context per type (the rate only splits histograms and distributions)")
    c.flush(deliver_now=True)
    after = ctx.stats()["metrics"]
    eq(after["contexts"], 0, "drained")
    eq(after["dropped"]["lines_unsent"], before["metrics"]["dropped"]["lines_unsent"] + 7,
       "one line per context, two set members: every line counted as unsent")
    eq(after["last_error"] != "", True, "last_error names the failure")


def accepted(ctx, c, **action):
    """Sends one action that must be taken: the next frame back is the
    Ping's reply, not an ErrorReply."""
    c.send(**action)
    seq = c.send(ping=ctx.pb.Ping())
    env = c.recv()
    eq((env.WhichOneof("action"), env.seq), ("ping_reply", seq), "no ErrorReply for %r" % (action,))


@case
def metric_limits(ctx):
    """Each limit of Metric taken at the limit and refused one past it:
    name 200 bytes, a tag 200 bytes, 64 tags, tags 2048 bytes, set member
    200 bytes, sample_rate 1."""
    pb = ctx.pb
    c = ctx.conn()
    tags_2048 = ",".join(["t" * 190] * 10 + ["u" * 138])
    eq(len(tags_2048), 2048, "tags of 2048 bytes")
    ok = [dict(name="a" * 200), dict(tags="t" * 200), dict(tags=",".join("t%d" % i for i in range(64))),
          dict(tags=tags_2048), dict(type=pb.Metric.METRIC_TYPE_SET, set_member="m" * 200),
          dict(sample_rate=1.0)]
    points = ctx.stats()["metrics"]["points"]
    for fields in ok:
        accepted(ctx, c, metric=metric(pb, **fields))
    eq(ctx.stats()["metrics"]["points"], points + len(ok), "every point at the limit aggregated")
    for fields, part in ((dict(tags=tags_2048 + "u"), "Metric.tags"),
                         (dict(type=pb.Metric.METRIC_TYPE_SET, set_member="m" * 201), "Metric.set_member"),
                         (dict(sample_rate=1.0000001), "Metric.sample_rate")):
        send_invalid(ctx, c, "metric", part, metric=metric(pb, **fields))


@case
def metric_tags_absent_is_empty(ctx):
    """Metric.tags absent or empty: no tags, one context."""
    pb = ctx.pb
    c = ctx.conn()
    contexts = ctx.stats()["metrics"]["contexts"]
    c.send(metric=metric(pb, name="conf.absent_empty"))
    c.send(metric=metric(pb, name="conf.absent_empty", tags=""))
    c.flush(deliver_now=False)
    eq(ctx.stats()["metrics"]["contexts"], contexts + 1, "one context")
    c.send(metric=metric(pb, name="conf.absent_empty", tags="a:1"))
    c.flush(deliver_now=False)
    eq(ctx.stats()["metrics"]["contexts"], contexts + 2, "a tag is another context")
