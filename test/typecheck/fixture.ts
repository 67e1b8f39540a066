// Compiled by test/types.test.ts with tsc: every @ts-expect-error line must be an error,
// every other line must compile. Never run.
import { Easy, Multi, CURL_SOCKOPT_OK, createSocket, type CurlSockaddr } from '../../dist/index.js';

const easy = new Easy();
easy.setopt('URL', 'http://example.test/');
easy.setopt('FOLLOWLOCATION', true);
easy.setopt('FOLLOWLOCATION', 1);
easy.setopt('TIMEOUT_MS', 1000);
easy.setopt('HTTPHEADER', ['a: b']);
easy.setopt('MAXFILESIZE_LARGE', 10n);
easy.setopt('POSTFIELDS', Buffer.from('x'));
easy.setopt('URL', null);
easy.setopt('OPENSOCKETFUNCTION', (_purpose: number, address: CurlSockaddr) => createSocket(address));
easy.setopt('SOCKOPTFUNCTION', () => CURL_SOCKOPT_OK);
const status: number = easy.getinfo('RESPONSE_CODE');
const url: string | null = easy.getinfo('EFFECTIVE_URL');

// @ts-expect-error a string option does not take a number
easy.setopt('URL', 5);
// @ts-expect-error TIMEOUT_MS is not a boolean option
easy.setopt('TIMEOUT_MS', true);
// @ts-expect-error unknown option name
easy.setopt('NOT_AN_OPTION', 1);
// @ts-expect-error a list option takes string[]
easy.setopt('HTTPHEADER', 'a: b');
// @ts-expect-error the binding owns WRITEDATA
easy.setopt('WRITEDATA', {});
// @ts-expect-error OPENSOCKETFUNCTION must return a number
easy.setopt('OPENSOCKETFUNCTION', () => 'fd');
// @ts-expect-error the binding owns WRITEDATA: not even null
easy.setopt('WRITEDATA', null);
// @ts-expect-error READFUNCTION is not supported: setopt refuses any value
easy.setopt('READFUNCTION', null);
// @ts-expect-error nor the data of a callback it does not support
easy.setopt('READDATA', {});
// @ts-expect-error SSL_CTX_DATA: the same
easy.setopt('SSL_CTX_DATA', 1);
// @ts-expect-error a raw C pointer option takes nothing
easy.setopt('STDERR', null);
easy.setopt('OPENSOCKETDATA', { any: 'value' });
easy.setopt('PROGRESSDATA', 1);  // alias of XFERINFODATA
// @ts-expect-error unknown info name
easy.getinfo('NOT_AN_INFO');

const multi = new Multi();
multi.setopt('MAXCONNECTS', 10);
multi.setopt('SOCKETFUNCTION', (e: Easy | null, fd: number, what: number) => (e && fd && what ? 0 : undefined));
multi.setopt('SOCKETFUNCTION', null);
multi.setopt('TIMERDATA', { any: 'value' });
// @ts-expect-error MAXCONNECTS takes a number
multi.setopt('MAXCONNECTS', 'ten');
// @ts-expect-error a numeric multi option takes a number, not null
multi.setopt('MAXCONNECTS', null);
// @ts-expect-error ignored by libcurl since 7.62, refused by the binding
multi.setopt('CONTENT_LENGTH_PENALTY_SIZE', 10);
// @ts-expect-error PUSHFUNCTION is not supported, nor its data
multi.setopt('PUSHDATA', {});

export { status, url };
