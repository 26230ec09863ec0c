// A js-libp2p peer for micronetwork's interop tests, driven by JSON lines on stdin.
//
//   node peer.mjs '{"protocol": "/micronetwork/kad/1.0.0", "seed": "<64 hex chars>"}'
//
// Prints {"event":"ready","peer_id":...,"addrs":[...]} once listening on 127.0.0.1, then
// answers each command {"id":N,"cmd":...} with {"id":N,"ok":true,...} or
// {"id":N,"ok":false,"error":"..."}. Logs go to stderr only.
import './polyfill.mjs'
import { createInterface } from 'node:readline'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const config = JSON.parse(process.argv[2] ?? '{}')
const hex = (u8) => Buffer.from(u8).toString('hex')
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'))
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const options = {
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({
      protocol: config.protocol ?? '/micronetwork/kad/1.0.0',
      clientMode: false,
      peerInfoMapper: passthroughMapper, // the default drops 127.0.0.1 addresses
      validators: { mn: async () => {} },
      selectors: { mn: () => 0 }
    })
  }
}
if (config.seed) options.privateKey = await generateKeyPairFromSeed('Ed25519', unhex(config.seed))
const node = await createLibp2p(options)
await node.start()

// A CID whose multihash is the identity hash of the given bytes, so its DHT key is known.
const cidFor = (keyHex) => CID.createV1(0x55, Digest.create(0x00, unhex(keyHex)))

const commands = {
  async dial ({ addr }) { await node.dial(multiaddr(addr)); return {} },
  async ping ({ peer }) { return { rtt: await node.services.ping.ping(peerIdFromString(peer)) } },
  async protocols ({ peer }) {
    const p = await node.peerStore.get(peerIdFromString(peer))
    return { protocols: p.protocols }
  },
  async find_peer ({ peer }) {
    const info = await node.peerRouting.findPeer(peerIdFromString(peer), { signal: AbortSignal.timeout(15000) })
    return { addrs: info.multiaddrs.map(String) }
  },
  async closest_peers ({ key }) {
    const found = []
    for await (const ev of node.services.dht.getClosestPeers(unhex(key), { signal: AbortSignal.timeout(15000) })) {
      if (ev.name === 'FINAL_PEER') found.push(ev.peer.id.toString())
    }
    return { peers: found }
  },
  async put ({ key, value }) {
    await node.contentRouting.put(unhex(key), unhex(value), { signal: AbortSignal.timeout(15000) })
    return {}
  },
  async get ({ key }) {
    const value = await node.contentRouting.get(unhex(key), { signal: AbortSignal.timeout(15000) })
    return { value: hex(value) }
  },
  // key: hex of the multihash *digest input*; the DHT key is the identity multihash bytes.
  async provide ({ key }) {
    const cid = cidFor(key)
    await node.contentRouting.provide(cid, { signal: AbortSignal.timeout(15000) })
    return { dht_key: hex(cid.multihash.bytes) }
  },
  async find_providers ({ key }) {
    const cid = cidFor(key)
    const providers = []
    for await (const p of node.contentRouting.findProviders(cid, { signal: AbortSignal.timeout(15000) })) {
      providers.push({ peer: p.id.toString(), addrs: p.multiaddrs.map(String) })
    }
    return { providers, dht_key: hex(cid.multihash.bytes) }
  },
  async routing_table () {
    const rt = node.services.dht.routingTable
    const peers = []
    for (const bucket of rt.kb.toIterable ? rt.kb.toIterable() : []) peers.push(bucket.peerId.toString())
    return { peers, size: rt.size }
  },
  async peers () { return { peers: node.getPeers().map(String) } },
  async stop () { setTimeout(async () => { await node.stop(); process.exit(0) }, 10); return {} }
}

out({ event: 'ready', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

const rl = createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let msg
  try { msg = JSON.parse(line) } catch { return }
  const fn = commands[msg.cmd]
  try {
    if (!fn) throw new Error(`unknown command ${msg.cmd}`)
    out({ id: msg.id, ok: true, ...(await fn(msg)) })
  } catch (err) {
    out({ id: msg.id, ok: false, error: String(err?.message ?? err) })
  }
})
rl.on('close', async () => { await node.stop(); process.exit(0) })
