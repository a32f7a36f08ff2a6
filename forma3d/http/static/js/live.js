// The tenant's live stream (/api/v1/live, server-sent events) shared by every view: committed
// events ("event") and printer telemetry ("telemetry"); "connected" after every (re)connect.
// Reconnects after a drop, with backoff.
import { API } from "./api.js";

export class Live {
  constructor(statusEl) {
    this.statusEl = statusEl;
    this.listeners = new Set();
    this.controller = null;
    this.running = false;
    this.retryMs = 500;
  }

  /** Calls `fn(kind, data)` for every frame; returns the function that stops it. */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.loop();
  }

  stop() {
    this.running = false;
    if (this.controller) this.controller.abort();
    this.state("offline");
  }

  state(name) {
    this.statusEl.dataset.state = name;
    this.statusEl.textContent = name;
  }

  async loop() {
    while (this.running) {
      this.controller = new AbortController();
      try {
        const res = await fetch(API + "/live", { credentials: "same-origin",
                                                 signal: this.controller.signal });
        if (res.status === 401) { this.running = false; this.state("offline"); return; }
        if (!res.ok) throw new Error(`live stream: HTTP ${res.status}`);
        this.state("live");
        this.retryMs = 500;
        this.emit("connected", {});  // followers refetch what they may have missed
        await this.read(res.body.getReader());
      } catch (err) {
        if (!this.running) return;
      }
      if (!this.running) return;
      this.state("reconnecting");
      await new Promise(resolve => setTimeout(resolve, this.retryMs));
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    }
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        this.dispatch(frame);
      }
    }
  }

  dispatch(frame) {
    let kind = "message", data = "";
    for (const line of frame.split("\n")) {
      if (line.startsWith("event: ")) kind = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    if (!data) return;  // a comment or heartbeat
    let parsed;
    try { parsed = JSON.parse(data); } catch { return; }
    this.emit(kind, parsed);
  }

  emit(kind, data) {
    for (const fn of this.listeners) {
      try { fn(kind, data); } catch (err) { console.error(err); }
    }
  }
}
