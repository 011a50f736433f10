import type { Request } from "express";

/**
 * The client IP the per-client limits count: the connection's peer, or, with TRUST_PROXY hops
 * in front, the address those proxies recorded. With TRUST_PROXY=0 no header the client sends
 * can change it.
 */
export const clientIp = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? "unknown";
