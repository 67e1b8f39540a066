// New TCP connections of protocols where the client speaks first send the
// last packet of the handshake (the client's ACK) together with their first
// bytes, not on its own.
//
// Why: the bare ACK is what puts the connection in the server's accept
// queue, so a server that sleeps between connections is woken once for the
// connect and once more for the request that follows. On Linux a socket with
// TCP_DEFER_ACCEPT set before connect() holds that ACK back until it sends
// data (or for at most the delayed-ACK time, 200 ms), and the server then
// sees the connection and its request at once: one packet and one wake-up
// less per connection. Only for schemes whose client always sends first
// (HTTP, HTTPS, WebSocket): a server that greets first (FTP, SMTP, ...)
// would wait for the delayed ACK.
#pragma once

#include <curl/curl.h>

namespace cs {

// Whether the transfer on `handle` is one whose client sends first on a new
// connection: its current URL (redirects included) is http, https, ws or wss.
bool ClientSpeaksFirst(CURL* handle);

// Whether libcurl asked for a TCP socket (IPv4 or IPv6) with this address.
bool IsTcpAddress(const curl_sockaddr* address);

// Sets the option on fd before connect (from the binding's SOCKOPTFUNCTION,
// before the user's, so that the OPENSOCKETFUNCTION stays libcurl's own). A
// failure (a socket that is not TCP, a platform without the option) changes
// nothing, so it is not reported.
void DeferHandshakeAck(curl_socket_t fd);

}  // namespace cs
