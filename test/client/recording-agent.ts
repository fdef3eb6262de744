// A real undici Agent that records every request the SDK sends (node, method, path) and the
// answer's status and `x-raftlog-served-by`, so tests over real sockets can check where requests
// went.

import { Agent, type Dispatcher } from 'undici';

export interface SentRequest {
  origin: string;
  method: string;
  path: string;
  statusCode?: number;
  servedBy?: string;
}

type LegacyOnHeaders = (statusCode: number, headers: Buffer[], resume: () => void, text: string) => boolean;

export function recordingAgent(): { dispatcher: Dispatcher; sent: SentRequest[]; agent: Agent } {
  const agent = new Agent({ connections: 16 });
  const sent: SentRequest[] = [];
  const dispatcher = agent.compose((dispatch) => (options, handler) => {
    const entry: SentRequest = { origin: String(options.origin), method: options.method, path: options.path };
    sent.push(entry);
    const original = handler as unknown as { onHeaders?: LegacyOnHeaders };
    const onHeaders: LegacyOnHeaders = (statusCode, headers, resume, text) => {
      entry.statusCode = statusCode;
      for (let i = 0; i + 1 < headers.length; i += 2) {
        if (String(headers[i]).toLowerCase() === 'x-raftlog-served-by')
          entry.servedBy = String(headers[i + 1]);
      }
      return original.onHeaders!.call(handler, statusCode, headers, resume, text);
    };
    const onResponseStart = (
      controller: unknown,
      statusCode: number,
      headers: Record<string, string | string[] | undefined>,
      text: string,
    ) => {
      entry.statusCode = statusCode;
      const servedBy = headers['x-raftlog-served-by'];
      if (servedBy !== undefined) entry.servedBy = String(servedBy);
      return (handler.onResponseStart as (...args: unknown[]) => void).call(
        handler,
        controller,
        statusCode,
        headers,
        text,
      );
    };
    // A Proxy, not a copy: the handler's methods keep their `this` (undici uses private fields).
    const wrapped = new Proxy(handler, {
      get(target, property) {
        if (property === 'onHeaders' && typeof original.onHeaders === 'function') return onHeaders;
        if (property === 'onResponseStart' && typeof handler.onResponseStart === 'function')
          return onResponseStart;
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return dispatch(options, wrapped);
  });
  return { dispatcher, sent, agent };
}
