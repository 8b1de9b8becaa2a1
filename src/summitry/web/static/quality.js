// How well a tile's media arrives, as network bars: loss, round-trip time and bitrate
// from getStats, taken every few seconds over the interval since the last look.

// Past these, calls are known to suffer: a few percent of loss is audible and visible
// even with FEC and retransmissions; a quarter of a second of round trip makes people
// talk over each other.
const FAIR = { loss: 0.03, rtt: 0.25 };
const POOR = { loss: 0.1, rtt: 0.5 };

export const LEVELS = {
  good: "Good connection",
  fair: "Fair connection",
  poor: "Poor connection",
  none: "No media arriving",
};

/** The level for these figures: loss a share (0-1), rtt in seconds (or null). */
export function levelOf({ loss, rtt, packets }) {
  if (!packets) return "none";
  if (loss >= POOR.loss || (rtt ?? 0) >= POOR.rtt) return "poor";
  if (loss >= FAIR.loss || (rtt ?? 0) >= FAIR.rtt) return "fair";
  return "good";
}

export function describe({ loss, rtt, kbps }) {
  const parts = [`loss ${(loss * 100).toFixed(1)} %`];
  if (rtt != null) parts.push(`round trip ${Math.round(rtt * 1000)} ms`);
  parts.push(kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mb/s` : `${Math.round(kbps)} kb/s`);
  return parts.join(" · ");
}

/** Counters of one tile's receivers, or of a sender's reports, summed over kinds. */
export class QualityMeter {
  constructor() {
    this.last = null;
  }

  /** `totals`: {lost, packets, bytes, rtt} now; returns the interval's figures. */
  take(totals, now = performance.now()) {
    const last = this.last;
    this.last = { ...totals, at: now };
    if (!last) return null;
    const received = Math.max(0, totals.packets - last.packets);
    const lost = Math.max(0, totals.lost - last.lost);
    const seconds = Math.max((now - last.at) / 1000, 0.001);
    const figures = {
      packets: received,
      loss: received + lost ? lost / (received + lost) : 0,
      rtt: totals.rtt,
      kbps: (Math.max(0, totals.bytes - last.bytes) * 8) / 1000 / seconds,
    };
    return { ...figures, level: levelOf(figures) };
  }
}

/** What a receiver's report adds to a tile's totals. */
export function receivedTotals(reports) {
  const totals = { lost: 0, packets: 0, bytes: 0, rtt: null };
  for (const report of reports) {
    for (const entry of report.values()) {
      if (entry.type === "inbound-rtp") {
        totals.lost += entry.packetsLost || 0;
        totals.packets += entry.packetsReceived || 0;
        totals.bytes += entry.bytesReceived || 0;
      } else if (entry.type === "candidate-pair" && entry.nominated && entry.state === "succeeded") {
        totals.rtt = entry.currentRoundTripTime ?? totals.rtt;
      }
    }
  }
  return totals;
}

/** A sender's totals, from what the server reports back of its stream (RTCP). */
export function sentTotals(report) {
  const totals = { lost: 0, packets: 0, bytes: 0, rtt: null };
  for (const entry of report.values()) {
    if (entry.type === "remote-inbound-rtp") {
      totals.lost += entry.packetsLost || 0;
      totals.rtt = entry.roundTripTime ?? totals.rtt;
    } else if (entry.type === "outbound-rtp") {
      totals.packets += entry.packetsSent || 0;
      totals.bytes += entry.bytesSent || 0;
    }
  }
  return totals;
}
