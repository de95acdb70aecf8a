"""Replays the session in pauses.har (recorded by mitmproxy 10.1); written by `loadgen har`.

7 recorded request(s) replayed.
Values the server handed out (tokens, ids) are read from the live responses, so the
replay keeps working after the recording's tokens expire; the rest is replayed as recorded.

    loadgen run pauses.py --host http://localhost:8080
"""

from __future__ import annotations

import asyncio

from loadgen import User, between, task


class RecordedUser(User):
    """One browser session, replayed in the recorded order."""

    host = "http://localhost:8080"
    wait_time = between(2.5, 4.0)

    @task
    async def replay(self) -> None:
        """The recorded steps in order, with the recorded pauses between them."""
        await self.step_1_get_items()
        await asyncio.sleep(4.0)
        await self.step_2_post_cart()
        await asyncio.sleep(2.5)
        await self.step_3_get_total()

    async def step_1_get_items(self) -> None:
        """GET /api/items and 1 more request(s)."""
        r = await self.client.get("/api/items")
        r.check(status=200)
        r = await self.client.get("/api/items/17", name="/api/items/[id]")
        r.check(status=200)

    async def step_2_post_cart(self) -> None:
        """POST /api/cart and 1 more request(s)."""
        r = await self.client.post("/api/cart", json={"item_id": 17, "qty": 2})
        r.check(status=201)
        self.cart_id = r.json()["cart_id"]
        await asyncio.sleep(0.8)
        r = await self.client.put(
            f"/api/cart/{self.cart_id}",
            name="/api/cart/[id]",
            json={"qty": 3, "note": f"cart {self.cart_id}"},
        )
        r.check(status=200)

    async def step_3_get_total(self) -> None:
        """GET /api/cart/[id]/total and 2 more request(s)."""
        r = await self.client.get(f"/api/cart/{self.cart_id}/total", name="/api/cart/[id]/total")
        r.check(status=200)
        r = await self.client.post(
            "/api/echo",
            headers={"Content-Type": "text/plain", "X-Note": "say {\"x\"} \\ done"},
            data="He said \"hi\" {not a field} C:\\temp\\x\x09tab\x00nul é ✓ 😀",
        )
        r.check(status=200)
        r = await self.client.request("PROPFIND", "/dav/", headers={"Depth": "1"})
        r.check(status=207)
