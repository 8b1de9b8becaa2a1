// Which simulcast layer of a feed's video this browser receives: the highest its path
// carries. Senders encode three (a quarter, half and full size); Janus forwards the one
// asked for. A lossy interval steps down at once; stepping back up waits for a calm
// spell, twice as long after each step up that failed, so a path at its limit is not
// driven into loss every few seconds.

import { QualityMeter, receivedTotals } from "./quality.js";

export const LAYER_NAMES = ["low", "medium", "high"];
const HIGHEST = LAYER_NAMES.length - 1;
// Loss over one interval (a share) that steps down, and under which a path is calm.
const STEP_DOWN_LOSS = 0.04;
const CALM_LOSS = 0.01;
const FIRST_WAIT_MS = 8_000;
const LONGEST_WAIT_MS = 120_000;

export class LayerChooser {
  constructor(now = performance.now()) {
    this.layer = HIGHEST;
    this.calmSince = now;
    this.wait = FIRST_WAIT_MS;
    this.steppedUpAt = null;
  }

  /** `loss` of the feed's video over the last interval; returns the layer to receive. */
  next(loss, now = performance.now()) {
    if (loss >= STEP_DOWN_LOSS) {
      if (this.layer > 0) {
        if (this.steppedUpAt !== null && now - this.steppedUpAt < this.wait) {
          this.wait = Math.min(this.wait * 2, LONGEST_WAIT_MS);
        }
        this.layer -= 1;
      }
      this.steppedUpAt = null;
      this.calmSince = now;
    } else if (loss > CALM_LOSS) {
      this.calmSince = now;
    } else if (this.layer < HIGHEST && now - this.calmSince >= this.wait) {
      this.layer += 1;
      this.steppedUpAt = now;
      this.calmSince = now;
    }
    return this.layer;
  }
}

/** One feed's video as received: its loss from each look at the receiver's stats, and
 * the layer that asks for. Starts at the top, as Janus does. */
export class FeedLayers {
  constructor() {
    this.meter = new QualityMeter();
    this.chooser = new LayerChooser();
    this.layer = this.chooser.layer;
  }

  /** `report`: the video receiver's getStats(); the layer's name if it changed. */
  take(report, now = performance.now()) {
    const figures = this.meter.take(receivedTotals([report]), now);
    if (!figures?.packets) return undefined;
    const layer = this.chooser.next(figures.loss, now);
    if (layer === this.layer) return undefined;
    this.layer = layer;
    return LAYER_NAMES[layer];
  }
}
