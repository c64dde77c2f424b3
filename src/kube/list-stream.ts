/**
 * Splits the JSON of a Kubernetes list (`{"kind":..,"metadata":{..},"items":[{..},{..}]}`) into
 * its items as the text arrives, so that each item is parsed on its own and is garbage as soon
 * as it is handed on: the page's text and its whole parsed tree are never in memory at once
 * (read whole, a page of 500 Deployments grew the daemon's RSS by ~15 MiB until the next full
 * GC). Everything outside `items` is kept and parsed at the end (the list's metadata).
 */
export class ListItemSplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The last string closed at depth 1: the key of the value that follows */
  private key = '';
  private keyStart = -1;
  private keyText = '';
  /** Inside the top-level `items` array */
  private inItems = false;
  /** The item being read (across chunks) */
  private item: string[] = [];
  private inItem = false;
  private readonly rest: string[] = [];

  constructor(private readonly onItem: (item: unknown) => void) {}

  push(chunk: string): void {
    let copiedTo = 0; // chunk[copiedTo, i) is not yet copied to rest or the item
    let itemFrom = this.inItem ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) {
          this.inString = false;
          if (this.depth === 1) {
            this.key = this.keyText + chunk.slice(Math.max(this.keyStart, 0), i);
            this.keyText = '';
          }
        }
        continue;
      }
      if (c === 0x22) {
        this.inString = true;
        if (this.depth === 1) {
          this.keyStart = i + 1;
          this.keyText = '';
        }
      } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (this.inItems && this.depth === 2 && c === 0x7b) {
          // An item begins: what came before it belongs to rest.
          this.rest.push(chunk.slice(copiedTo, i));
          this.inItem = true;
          itemFrom = i;
        }
        this.depth++;
        if (this.depth === 2 && c === 0x5b && this.key === 'items') this.inItems = true;
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        this.depth--;
        if (this.inItem && this.depth === 2) {
          this.item.push(chunk.slice(itemFrom, i + 1));
          this.onItem(JSON.parse(this.item.join('')));
          this.item = [];
          this.inItem = false;
          itemFrom = -1;
          copiedTo = i + 1;
        } else if (this.inItems && this.depth === 1) {
          this.inItems = false;
        }
      } else if (c === 0x2c /* , */ && this.inItems && this.depth === 2) {
        // The commas between items are left out of rest: it keeps `"items":[]`.
        this.rest.push(chunk.slice(copiedTo, i));
        copiedTo = i + 1;
      }
    }
    if (this.inString && this.depth === 1) {
      // A key split across chunks.
      this.keyText += chunk.slice(Math.max(this.keyStart, 0));
      this.keyStart = 0;
    }
    if (this.inItem) this.item.push(chunk.slice(Math.max(itemFrom, 0)));
    else this.rest.push(chunk.slice(copiedTo));
  }

  /** The list without its items (`metadata` holds resourceVersion and continue). */
  end(): Record<string, unknown> {
    if (this.inItem || this.depth !== 0) throw new SyntaxError('the list ended in the middle of the JSON');
    const text = this.rest.join('').trim();
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  }
}
