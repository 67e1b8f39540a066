// curl-sockets client (the package's CommonJS build in dist/).
//   --mode new-easy    a new Easy per request, closed after its transfer
//   --mode reuse-easy  one Easy per concurrent worker, reused for every request
// All transfers run on one Multi (Multi.perform). --forbid-reuse sets FORBID_REUSE;
// --callbacks installs OPENSOCKETFUNCTION + SOCKOPTFUNCTION + CLOSESOCKETFUNCTION in JS
// (the same work raw-multi.c does in C with --callbacks). --rcvbuf BYTES sets SO_RCVBUF
// on every socket from a JS SOCKOPTFUNCTION (raw-multi.c --rcvbuf in C). --buffersize BYTES
// sets BUFFERSIZE (the binding's default is 64 KiB on libcurl 8.7+, libcurl's is 16 KiB).
// --into gives each worker one buffer that every body of its requests is written into
// (perform's `into`), as a C client reuses its buffer, instead of a new Buffer per body.
import { runClient } from './common.mjs';

runClient(async (opts) => {
  const mod = await import('../../dist/index.js');
  const pkg = mod.default ?? mod;
  const {
    Easy, Multi, CURL_SOCKOPT_OK, createSocket, closeSocket, setSocketOption,
    IPPROTO_TCP, TCP_NODELAY, SOL_SOCKET, SO_RCVBUF, libcurlVersion,
  } = pkg;
  if (typeof Easy !== 'function' || typeof Multi !== 'function') {
    throw new Error('dist/index.js does not export Easy and Multi');
  }
  if (opts.mode !== 'new-easy' && opts.mode !== 'reuse-easy') {
    throw new Error(`unknown --mode ${opts.mode}`);
  }

  const opensocket = (purpose, address) => createSocket(address);
  const sockopt = (fd) => {
    if (opts.callbacks) setSocketOption(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (opts.rcvbuf > 0) setSocketOption(fd, SOL_SOCKET, SO_RCVBUF, opts.rcvbuf);
    return CURL_SOCKOPT_OK;
  };
  const closesocket = (fd) => {
    closeSocket(fd);
    return 0;
  };

  const configure = (easy) => {
    easy.setopt('URL', opts.url);
    if (opts.forbidReuse) easy.setopt('FORBID_REUSE', true);
    if (opts.buffersize > 0) easy.setopt('BUFFERSIZE', opts.buffersize);
    if (opts.callbacks || opts.rcvbuf > 0) easy.setopt('SOCKOPTFUNCTION', sockopt);
    if (opts.callbacks) {
      easy.setopt('OPENSOCKETFUNCTION', opensocket);
      easy.setopt('CLOSESOCKETFUNCTION', closesocket);
    }
    return easy;
  };

  const multi = new Multi();
  // A worker's buffer fits the bodies it expects; a larger one gets a Buffer of its own.
  const performOptions = () => (opts.into ? { into: Buffer.allocUnsafe(Math.max(opts.expectBytes, 64 * 1024)) } : undefined);

  const newEasyRequest = (options) => async () => {
    const easy = configure(new Easy());
    try {
      const t = await multi.perform(easy, options);
      return { status: t.status, bytes: t.body.length };
    } finally {
      easy.close();
    }
  };

  const handles = [];
  const worker = (index) => {
    const options = performOptions();
    if (opts.mode === 'new-easy') return newEasyRequest(options);
    const easy = configure(new Easy());
    handles[index] = easy;
    return async () => {
      const t = await multi.perform(easy, options);
      return { status: t.status, bytes: t.body.length };
    };
  };

  return {
    worker,
    info: { libcurl: typeof libcurlVersion === 'function' ? libcurlVersion() : libcurlVersion },
    close: () => {
      for (const e of handles) e?.close();
      multi.close();
    },
  };
});
