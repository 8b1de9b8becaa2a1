// A summit's event stream (server-sent events), for the room and the public page. It says
// when it is up and when it is down, and opens a new stream, after a back-off, whenever
// one fails: EventSource's own reconnection would present the same URL again, and a
// ticket opens one stream only.

export class EventStream {
  /**
   * `url()`: where the stream opens; it may be async (the room asks for a ticket first)
   * and may throw, which counts as the stream being down. `handlers`: event type → handler
   * of the event's JSON. `onUp(missed)`: the stream is open; `missed` if events may have
   * passed unseen: it was down since it was last open, or this is its first open (what the
   * page read before it came before the stream, and something may have happened between).
   * `onDown()`: it is down. `retry`: the first wait before a new stream, doubled after
   * each failure up to `longest`, and back to `first` once the stream opens.
   */
  constructor({ url, handlers, onUp, onDown, retry }) {
    this.url = url;
    this.handlers = handlers;
    this.onUp = onUp;
    this.onDown = onDown;
    this.retry = retry;
    this.delay = retry.first;
    this.source = null;
    this.down = true; // not listening yet
    this.stopped = false;
  }

  async open() {
    this.source?.close();
    this.source = null;
    let url;
    try {
      url = await this.url();
    } catch {
      if (this.stopped) return;
      this.lost();
      this.reopen();
      return;
    }
    if (this.stopped || this.source) return; // stopped, or opened meanwhile
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => {
      this.delay = this.retry.first;
      const missed = this.down; // events may have passed us by
      this.down = false;
      this.onUp(missed);
    });
    source.addEventListener("error", () => {
      this.lost();
      if (this.source !== source) return;
      // EventSource would retry the same URL, whose ticket is spent: a new stream, with
      // a new ticket, after the back-off.
      source.close();
      this.reopen();
    });
    for (const [type, handler] of Object.entries(this.handlers)) {
      source.addEventListener(type, (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        handler(data);
      });
    }
  }

  lost() {
    this.down = true;
    this.onDown();
  }

  reopen() {
    const delay = this.delay;
    this.delay = Math.min(delay * 2, this.retry.longest);
    setTimeout(() => {
      if (!this.stopped) this.open();
    }, delay);
  }

  /** For good: no more events, no new stream. */
  stop() {
    this.stopped = true;
    this.source?.close();
  }
}
