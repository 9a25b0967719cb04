#!/usr/bin/env python3
"""A TCP proxy for the fault-injection tests, put between journeyd and Redis or SMTP.

It forwards --listen to --target and takes commands, one line each, on --control (each
answered with "ok" or "error: ..."):

  pass          forward everything (the start state); listen again after `refuse`
  delay MS      hold each chunk MS milliseconds before forwarding it
  silent        forward nothing more, either way, on any connection; keep them open (a peer
                that went away without closing)
  trickle MS    from the server to the client, one byte every MS milliseconds
  cut           forward the first half of the server's next chunk, then go silent on that
                connection (a reply cut in half)
  drop          close every open connection (FIN)
  reset         reset every open connection (RST)
  refuse        stop listening: new connections are refused; open ones stay
  count         the number of connections accepted so far

The mode applies to open connections and new ones alike.
"""
import argparse
import asyncio
import socket
import struct


class Proxy:
    def __init__(self, args):
        self.args = args
        self.mode = "pass"
        self.delay = 0.0
        self.trickle = 0.0
        self.cut_pending = False
        self.server = None
        self.open_links = {}  # id → {"writers": (client, server), "cut": bool}
        self.accepted = 0

    async def listen(self):
        if self.server is None:
            self.server = await asyncio.start_server(
                self.accept, "127.0.0.1", self.args.listen, reuse_address=True)

    async def refuse(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def accept(self, reader, writer):
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.args.target_host, self.args.target_port)
        except OSError:
            writer.close()
            return
        link = {"writers": (writer, up_writer), "cut": False}
        self.open_links[id(link)] = link
        await asyncio.gather(self.pump(reader, up_writer, link, False),
                             self.pump(up_reader, writer, link, True),
                             return_exceptions=True)
        self.open_links.pop(id(link), None)
        for w in (writer, up_writer):
            w.close()

    async def pump(self, reader, writer, link, from_server):
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            while self.mode == "silent" or link["cut"]:
                await asyncio.sleep(0.05)
            if self.delay > 0:
                await asyncio.sleep(self.delay)
            if from_server and self.cut_pending:
                self.cut_pending = False
                link["cut"] = True
                writer.write(data[:max(1, len(data) // 2)])
                await writer.drain()
                continue
            if from_server and self.trickle > 0:
                for i in range(len(data)):
                    writer.write(data[i:i + 1])
                    await writer.drain()
                    await asyncio.sleep(self.trickle)
                continue
            writer.write(data)
            await writer.drain()

    def close_all(self, rst):
        for link in list(self.open_links.values()):
            for w in link["writers"]:
                if rst:
                    sock = w.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                w.close()

    async def command(self, line):
        words = line.split()
        if not words:
            return "error: empty command"
        op, rest = words[0], words[1:]
        if op == "pass":
            self.mode, self.delay, self.trickle = "pass", 0.0, 0.0
            await self.listen()
        elif op == "delay" and len(rest) == 1:
            self.delay = float(rest[0]) / 1000
        elif op == "silent":
            self.mode = "silent"
        elif op == "trickle" and len(rest) == 1:
            self.trickle = float(rest[0]) / 1000
        elif op == "cut":
            self.cut_pending = True
        elif op == "drop":
            self.close_all(False)
        elif op == "reset":
            self.close_all(True)
        elif op == "refuse":
            await self.refuse()
        elif op == "count":
            return "ok %d" % self.accepted
        else:
            return "error: unknown command %r" % line
        return "ok"

    async def control(self, reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write((await self.command(line.decode().strip()) + "\n").encode())
            await writer.drain()
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--target-host", default="127.0.0.1")
    p.add_argument("--target-port", type=int, required=True)
    p.add_argument("--control", type=int, required=True)
    args = p.parse_args()
    proxy = Proxy(args)
    await proxy.listen()
    control = await asyncio.start_server(proxy.control, "127.0.0.1", args.control,
                                         reuse_address=True)
    async with control:
        await control.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
