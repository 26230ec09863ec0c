// A js-libp2p peer for micronetwork's interop tests, driven by JSON lines on stdin/stdout.
//
//   node peer.mjs ['{"listen": "/ip4/127.0.0.1/tcp/0", "protocol": "/micronetwork/kad/1.0.0",
//                    "seed": "<64 hex chars>", "private_key": "<hex libp2p PrivateKey protobuf>",
//                    "client_mode": false, "gossipsub": {...}}']
//
// Every config field is optional (defaults shown; no seed/private_key = a fresh Ed25519 key).
// Once listening it prints one line {"event":"ready","peer_id":...,"addrs":[...],...}, then
// answers each command line {"id":N,"cmd":"...",...} with {"id":N,"ok":true,...} or
// {"id":N,"ok":false,"error":"..."}. Commands may run concurrently; answers carry their id.
// stdout carries only these JSON lines; logs go to stderr (DEBUG=libp2p:* for js-libp2p's own).
//
// Byte strings (keys, values) are hex. Peer ids are base58 strings, addresses multiaddr strings.
// Every network command takes an optional "timeout_ms" (default 15000).
//
// With a "gossipsub" object in the config the node also runs @chainsafe/libp2p-gossipsub (as
// services.pubsub; StrictSign, emitSelf). Its options pass through, plus "msg_id": "go" for
// go-libp2p's message id (from + seqno) instead of js's default (public key protobuf + seqno).
// Pubsub activity is printed as events: {"event":"message",...} for every message delivered to
// a subscribed topic (ours too), "subscription-change", "graft", "prune".
import './polyfill.mjs' // must come before libp2p: defines Promise.withResolvers on Node 20
import { createInterface } from 'node:readline'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed, privateKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'

const RAW = 0x55 // multicodec "raw", the codec of the CIDs this peer makes

const config = JSON.parse(process.argv[2] ?? '{}')
const PROTOCOL = config.protocol ?? '/micronetwork/kad/1.0.0'
const hex = (u8) => Buffer.from(u8).toString('hex')
const unhex = (s) => {
  if (typeof s !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(s)) throw new Error(`not hex: ${s}`)
  return new Uint8Array(Buffer.from(s, 'hex'))
}
const seqnoBytes = (n) => unhex(n.toString(16).padStart(16, '0')) // a bigint, 8 bytes big-endian
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const log = (...args) => process.stderr.write(`[peer.mjs] ${args.join(' ')}\n`)
const signal = (msg) => AbortSignal.timeout(msg.timeout_ms ?? 15000)
const peerArg = (msg) => {
  if (typeof msg.peer !== 'string') throw new Error('missing "peer" (base58 peer id)')
  return peerIdFromString(msg.peer)
}

process.on('unhandledRejection', (err) => log('unhandled rejection:', err?.stack ?? err))

const options = {
  addresses: { listen: [config.listen ?? '/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({
      protocol: PROTOCOL,
      // Without this the DHT stays a client until it sees a public address (never, on loopback).
      clientMode: config.client_mode ?? false,
      // The default mapper (removePrivateAddressesMapper) drops 127.0.0.1 addresses.
      peerInfoMapper: passthroughMapper,
      // "pk" has a built-in validator and selector; "mn" is micronetwork's own namespace.
      validators: { mn: async () => {} },
      selectors: { mn: () => 0 }
    })
  }
}
if (config.gossipsub) {
  const { msg_id: msgIdKind, ...gossipOptions } = config.gossipsub
  if (msgIdKind === 'go') {
    // go-libp2p-pubsub's default message id: the author's peer id bytes + the seqno bytes.
    gossipOptions.msgIdFn = (msg) => new Uint8Array([...msg.from.toMultihash().bytes, ...seqnoBytes(msg.sequenceNumber)])
  }
  options.services.pubsub = gossipsub({
    emitSelf: true, // our own messages are reported too (with the seqno and signature we sent)
    globalSignaturePolicy: 'StrictSign',
    ...gossipOptions
  })
}
if (config.private_key) options.privateKey = privateKeyFromProtobuf(unhex(config.private_key))
else if (config.seed) options.privateKey = await generateKeyPairFromSeed('Ed25519', unhex(config.seed))

const node = await createLibp2p(options)
await node.start()
const dht = node.services.dht
const pubsub = node.services.pubsub // undefined unless config.gossipsub

function pubsubOrThrow () {
  if (pubsub == null) throw new Error('gossipsub is not enabled (start with a "gossipsub" config)')
  return pubsub
}

// Pubsub events go to stdout as JSON lines; ids are base58 strings, bytes hex.
if (pubsub != null) {
  pubsub.addEventListener('gossipsub:message', (ev) => {
    const { propagationSource, msgId, msg } = ev.detail
    out({
      event: 'message',
      topic: msg.topic,
      data: hex(msg.data),
      from: msg.type === 'signed' ? msg.from.toString() : null,
      seqno: msg.type === 'signed' ? hex(seqnoBytes(msg.sequenceNumber)) : null,
      signature: msg.type === 'signed' ? hex(msg.signature) : null,
      key: msg.type === 'signed' && msg.key != null ? hex(publicKeyToProtobuf(msg.key)) : null,
      msg_id: hex(Buffer.from(msgId, 'base64')),
      received_from: propagationSource.toString()
    })
  })
  pubsub.addEventListener('subscription-change', (ev) => {
    out({
      event: 'subscription-change',
      peer: ev.detail.peerId.toString(),
      subscriptions: ev.detail.subscriptions.map((s) => ({ topic: s.topic, subscribe: s.subscribe }))
    })
  })
  for (const kind of ['graft', 'prune']) {
    pubsub.addEventListener(`gossipsub:${kind}`, (ev) => {
      out({ event: kind, peer: ev.detail.peerId.toString(), topic: ev.detail.topic, direction: ev.detail.direction })
    })
  }
}

// Resolves once check() returns null, re-checked on the router's own events (a subscription
// change, a GRAFT either way, a heartbeat: where its peer and mesh sets change); no polling.
async function untilPubsub (msg, check) {
  const ps = pubsubOrThrow()
  if (check() == null) return
  const names = ['subscription-change', 'gossipsub:graft', 'gossipsub:prune', 'gossipsub:heartbeat']
  const sig = signal(msg)
  await new Promise((resolve, reject) => {
    const cleanup = () => {
      for (const n of names) ps.removeEventListener(n, onEvent)
      sig.removeEventListener('abort', onAbort)
    }
    // Events fire before the router updates its sets for some of them: check on the next tick.
    const onEvent = () => setImmediate(() => { if (check() == null) { cleanup(); resolve() } })
    const onAbort = () => { cleanup(); reject(new Error(check() ?? 'aborted')) }
    for (const n of names) ps.addEventListener(n, onEvent)
    sig.addEventListener('abort', onAbort)
  })
}

// Provider records: js kad-dht takes a CID and uses cid.multihash.bytes as the DHT key (a CIDv0
// and a CIDv1 of the same multihash share one record). As a server it parses an incoming
// ADD_PROVIDER / GET_PROVIDERS key with CID.decode, so only keys that also decode as a CID are
// accepted: in practice a sha2-256 multihash (0x12 0x20 + 32 bytes, read as a CIDv0).
function cidFromMsg (msg) {
  if (typeof msg.cid === 'string') return CID.parse(msg.cid)
  if (typeof msg.key === 'string') { // the raw DHT key: must be a multihash
    let digest
    try { digest = Digest.decode(unhex(msg.key)) } catch (err) {
      throw new Error(`key is not a multihash (${err.message}); use "data" to hash bytes into one`)
    }
    return CID.createV1(RAW, digest)
  }
  if (typeof msg.data === 'string') return null // hashed asynchronously in cidFor
  throw new Error('give one of "cid" (string), "key" (hex multihash) or "data" (hex bytes)')
}
async function cidFor (msg) {
  return cidFromMsg(msg) ?? CID.createV1(RAW, await sha256.digest(unhex(msg.data)))
}
const routingTablePeers = () => [...dht.routingTable.kb.toIterable()].map((c) => c.peerId.toString())
const cidInfo = (cid) => ({ cid: cid.toString(), dht_key: hex(cid.multihash.bytes) })

async function connectionTo (peerId, msg) {
  const existing = node.getConnections(peerId).filter((c) => c.status === 'open')
  return existing[0] ?? node.dial(peerId, { signal: signal(msg) })
}

async function provide (cid, msg) {
  const sentTo = []
  for await (const ev of dht.provide(cid, { signal: signal(msg) })) {
    if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'ADD_PROVIDER') sentTo.push(ev.from.toString())
  }
  return { ...cidInfo(cid), sent_to: sentTo }
}

async function findProviders (cid, msg) {
  const providers = new Map()
  for await (const ev of dht.findProviders(cid, { signal: signal(msg) })) {
    if (ev.name !== 'PROVIDER') continue
    for (const p of ev.providers) {
      providers.set(p.id.toString(), { peer: p.id.toString(), addrs: p.multiaddrs.map(String), from: ev.from.toString() })
    }
    if (msg.count && providers.size >= msg.count) break
  }
  return { ...cidInfo(cid), providers: [...providers.values()] }
}

const commands = {
  async info () {
    return { peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String), protocols: node.getProtocols(), mode: dht.getMode() }
  },
  async dial (msg) {
    const conn = await node.dial(multiaddr(msg.addr), { signal: signal(msg) })
    return { peer: conn.remotePeer.toString(), remote_addr: conn.remoteAddr.toString() }
  },
  async hangup (msg) { await node.hangUp(peerArg(msg)); return {} },
  // js allows one outbound ping stream per connection (the ping spec's rule), and kad-dht pings
  // every new routing-table contact: a ping that collides with that one is retried.
  async ping (msg) {
    const target = msg.addr ? multiaddr(msg.addr) : peerArg(msg)
    const sig = signal(msg)
    for (;;) {
      try {
        return { rtt: await node.services.ping.ping(target, { signal: sig }) }
      } catch (err) {
        if (err?.name !== 'TooManyOutboundProtocolStreamsError' || sig.aborted) throw err
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  },
  // Runs identify on the connection to the peer (dialling it if needed) and reports its answer.
  async identify (msg) {
    const conn = await connectionTo(peerArg(msg), msg)
    const r = await node.services.identify.identify(conn, { signal: signal(msg) })
    return {
      peer: r.peerId.toString(),
      protocols: r.protocols,
      agent: r.agentVersion,
      protocol_version: r.protocolVersion,
      listen_addrs: r.listenAddrs.map(String),
      observed_addr: r.observedAddr?.toString() ?? null
    }
  },
  // What the peer store knows (from the identify run when the connection opened).
  async protocols (msg) {
    const p = await node.peerStore.get(peerArg(msg))
    return { protocols: p.protocols, addrs: p.addresses.map((a) => a.multiaddr.toString()) }
  },
  // Through the DHT: use_cache=false (default) skips the local routing table / peer store.
  async find_peer (msg) {
    for await (const ev of dht.findPeer(peerArg(msg), { signal: signal(msg), useCache: msg.use_cache ?? false })) {
      if (ev.name === 'FINAL_PEER') return { addrs: ev.peer.multiaddrs.map(String), from: ev.from.toString() }
    }
    throw new Error('peer not found')
  },
  async closest_peers (msg) {
    const found = []
    const queried = new Set()
    for await (const ev of dht.getClosestPeers(unhex(msg.key), { signal: signal(msg) })) {
      if (ev.name === 'FINAL_PEER') found.push(ev.peer.id.toString())
      if (ev.name === 'PEER_RESPONSE') queried.add(ev.from.toString())
    }
    return { peers: found, queried: [...queried] }
  },
  async put (msg) {
    const storedAt = []
    for await (const ev of dht.put(unhex(msg.key), unhex(msg.value), { signal: signal(msg) })) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') storedAt.push(ev.from.toString())
    }
    return { stored_at: storedAt }
  },
  async get (msg) {
    const value = await node.contentRouting.get(unhex(msg.key), { signal: signal(msg) })
    return { value: hex(value) }
  },
  async provide (msg) { return provide(await cidFor(msg), msg) },
  async find_providers (msg) { return findProviders(await cidFor(msg), msg) },
  async provide_cid (msg) { return provide(CID.parse(msg.cid), msg) },
  async find_providers_cid (msg) { return findProviders(CID.parse(msg.cid), msg) },
  // The DHT key js uses for a CID, or for data hashed into a CIDv1 (raw, sha2-256).
  async cid_key (msg) { return cidInfo(await cidFor(msg)) },
  async routing_table () {
    return { peers: routingTablePeers(), size: dht.routingTable.size }
  },
  // Resolves once every peer in "peers" (and at least "count" peers) is in the routing table,
  // on the routing table's own peer:add events (no polling).
  async wait_routing_table (msg) {
    const rt = dht.routingTable
    const missing = () => {
      const have = routingTablePeers()
      const absent = (msg.peers ?? []).filter((p) => !have.includes(p))
      return (have.length < (msg.count ?? 0) || absent.length > 0) ? absent : null
    }
    if (missing() != null) {
      const sig = signal(msg)
      await new Promise((resolve, reject) => {
        const cleanup = () => { rt.removeEventListener('peer:add', onAdd); sig.removeEventListener('abort', onAbort) }
        const onAdd = () => { if (missing() == null) { cleanup(); resolve() } }
        const onAbort = () => { cleanup(); reject(new Error(`routing table still lacks ${JSON.stringify(missing())} (has ${JSON.stringify(routingTablePeers())})`)) }
        rt.addEventListener('peer:add', onAdd)
        sig.addEventListener('abort', onAbort)
      })
    }
    return { peers: routingTablePeers() }
  },
  async peers () {
    return {
      peers: node.getPeers().map(String),
      connections: node.getConnections().map((c) => ({
        peer: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString(), direction: c.direction, status: c.status
      }))
    }
  },
  // -- gossipsub (config.gossipsub) --
  async subscribe (msg) { pubsubOrThrow().subscribe(msg.topic); return { topics: pubsub.getTopics() } },
  async unsubscribe (msg) { pubsubOrThrow().unsubscribe(msg.topic); return { topics: pubsub.getTopics() } },
  // Sign and send; "recipients" are the peers it went to (js refuses to publish to nobody).
  async publish (msg) {
    const r = await pubsubOrThrow().publish(msg.topic, unhex(msg.data))
    return { recipients: r.recipients.map(String) }
  },
  async topics () { return { topics: pubsubOrThrow().getTopics() } },
  // Peers with a gossipsub stream (any topic) / subscribed to "topic" / in our mesh for "topic".
  async pubsub_peers () { return { peers: pubsubOrThrow().getPeers().map(String) } },
  async topic_peers (msg) { return { peers: pubsubOrThrow().getSubscribers(msg.topic).map(String) } },
  async mesh_peers (msg) { return { peers: pubsubOrThrow().getMeshPeers(msg.topic) } },
  // The router's score of a peer, and the protocols of the streams to it (ours) and from it.
  async score (msg) {
    const ps = pubsubOrThrow()
    const peer = peerArg(msg).toString()
    return {
      score: ps.score.score(peer),
      outbound_protocol: ps.streamsOutbound.get(peer)?.protocol ?? null,
      inbound_protocol: ps.streamsInbound.get(peer)?.rawStream.protocol ?? null
    }
  },
  // The message ids (hex) "peer" told us IDONTWANT about and that we still hold (js keeps them
  // for mcacheLength heartbeats).
  async idontwants (msg) {
    const ids = pubsubOrThrow().idontwants.get(peerArg(msg).toString()) ?? new Map()
    return { ids: [...ids.keys()].map((s) => hex(Buffer.from(s, 'base64'))) }
  },
  // Resolves once every peer in "peers" is subscribed to "topic" (and, with "mesh": true, in
  // our mesh for it), on the router's events.
  async wait_topic_peers (msg) {
    const ps = pubsubOrThrow()
    const current = () => msg.mesh ? ps.getMeshPeers(msg.topic) : ps.getSubscribers(msg.topic).map(String)
    await untilPubsub(msg, () => {
      const have = current()
      const absent = (msg.peers ?? []).filter((p) => !have.includes(p))
      return absent.length > 0 ? `${msg.mesh ? 'mesh' : 'subscribers'} of ${msg.topic} lack ${JSON.stringify(absent)} (have ${JSON.stringify(have)})` : null
    })
    return { peers: current() }
  },
  async stop () {
    setImmediate(() => shutdown(0))
    return {}
  }
}

let stopping = false
async function shutdown (code) {
  if (stopping) return
  stopping = true
  try { await node.stop() } catch (err) { log('stop failed:', err?.stack ?? err) }
  process.exit(code)
}

out({
  event: 'ready',
  peer_id: node.peerId.toString(),
  addrs: node.getMultiaddrs().map(String),
  protocols: node.getProtocols(),
  dht_protocol: PROTOCOL
})

const rl = createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let msg
  try { msg = JSON.parse(line) } catch { log('not JSON:', line); return }
  const fn = Object.hasOwn(commands, msg.cmd) ? commands[msg.cmd] : undefined
  try {
    if (!fn) throw new Error(`unknown command ${msg.cmd}`)
    out({ id: msg.id, ok: true, ...(await fn(msg)) })
  } catch (err) {
    log(`${msg.cmd} failed:`, err?.stack ?? err)
    out({ id: msg.id, ok: false, error: String(err?.message ?? err) })
  }
})
rl.on('close', () => shutdown(0)) // stdin closed: the test harness went away
process.on('SIGTERM', () => shutdown(0))
