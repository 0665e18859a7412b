/**
 * Yamux window updates as Go's and hashicorp's yamux send them: once a stream's reader has
 * taken at least half of its receive window, not after every frame. js-yamux answers each
 * data frame it delivers with a window update; for the one-frame messages of app calls
 * that doubled the frames on the wire, and each frame is a noise frame, a socket write
 * and a wake-up on the other side. The protocol is unchanged (a peer without this sees
 * fewer, larger updates, as from a Go peer); a SYN/ACK/FIN still goes at once.
 *
 * @example
 * ```ts
 * import './yamux-window.js' // once, before streams are opened
 * ```
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** The fields of a yamux stream this reads (private in its types). */
interface WindowState {
  recvWindow: number
  recvWindowCapacity: number
  state: StreamState
}

const proto = YamuxStream.prototype as unknown as WindowState & { sendWindowUpdate: () => void }
const update = proto.sendWindowUpdate
// a yamux release without this method keeps its own behaviour (test/unit/transport-frames.test.ts fails then)
if (typeof update === 'function') {
  proto.sendWindowUpdate = function (this: WindowState & { sendWindowUpdate: () => void }): void {
  // more than half the window still open and no SYN or ACK to send (the states that send
  // one; asking getSendFlags would move the state on): the update can wait
    if (this.recvWindowCapacity * 2 > this.recvWindow && this.state !== StreamState.Init && this.state !== StreamState.SYNReceived) return
    update.call(this)
  }
}
