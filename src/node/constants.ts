/** Every protocol of ours lives under this prefix so the mesh never mixes with IPFS. */
export const PROTOCOL_PREFIX = '/lepton'

/** Kademlia protocol id: a private DHT, not the public IPFS one. */
export const DHT_PROTOCOL = `${PROTOCOL_PREFIX}/kad/1.0.0`

/**
 * Hosts exempt from libp2p's inbound rate limit (5 connections per second per
 * host by default): many daemons on one machine all dial from 127.0.0.1.
 */
export const LOOPBACK_ALLOW = ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']

/** First DHT self-query soon after start, so a joining peer learns the mesh fast. */
export const DHT_INITIAL_QUERY_SELF_MS = 250

/** Later self-queries (refresh of the routing table). */
export const DHT_QUERY_SELF_MS = 60_000
