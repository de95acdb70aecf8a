"""Replays the session in shop.har (recorded by WebInspector 537.36); written by `loadgen har`.

11 recorded request(s) replayed, 10 left out (1 CORS preflights (the browser sends them itself);
1 answered from the browser's cache; 1 data URLs (not HTTP); 1 no response was recorded; 3
static assets; 2 third-party hosts; 1 websockets (not supported)).
Values the server handed out (tokens, ids) are read from the live responses, so the
replay keeps working after the recording's tokens expire; the rest is replayed as recorded.

    loadgen run shop.py --host https://shop.example.com
"""

from __future__ import annotations

import asyncio

from loadgen import User, between, task


class RecordedUser(User):
    """One browser session, replayed in the recorded order."""

    host = "https://shop.example.com"
    wait_time = between(1.0, 3.0)

    async def on_start(self) -> None:
        """The recorded login, once per user (every user signs in as the recorded account)."""
        r = await self.client.get("/signin")
        r.check(status=200)
        self.csrftoken = self.client.cookies.get("csrftoken")
        await asyncio.sleep(2.0)
        r = await self.client.post(
            "/api/session",
            headers={"Accept": "application/json", "X-Csrf-Token": self.csrftoken},
            json={"email": "ann@example.com", "password": "secret-1", "remember": True},
        )
        r.check(status=201)
        self.token = r.json()["token"]
        self.user_id = r.json()["user"]["id"]

    @task
    async def step_1_get_orders(self) -> None:
        """The page https://shop.example.com/orders."""
        r = await self.client.get("/orders")
        r.check(status=200)
        r = await self.client.get(
            f"/api/orders?customer_id={self.user_id}&limit=10",
            headers={"Accept": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        r.check(status=200)
        self.item_id = r.json()["items"][0]["id"]
        await asyncio.sleep(1.2)
        r = await self.client.get(
            f"/api/orders/{self.item_id}",
            name="/api/orders/[uuid]",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        r.check(status=200)
        self.invoice = r.json()["invoice"]
        r = await self.client.get(
            self.invoice,
            name="/invoices/[hash]",
            headers={"Authorization": f"Bearer {self.token}"},
            allow_redirects=False,
        )
        r.check(status=302)
        self.location = r.headers["Location"]
        r = await self.client.get(self.location, name="/files/[id]")
        r.check(status=200)
        await asyncio.sleep(1.2)
        r = await self.client.post(
            f"/api/orders/{self.item_id}/notes",
            name="/api/orders/[uuid]/notes",
            headers={"X-Csrf-Token": self.csrftoken, "Authorization": f"Bearer {self.token}"},
            data={"note": "Leave at the door", "order_id": self.item_id},
        )
        r.check(status=201)
        self.note_id = r.json()["note_id"]
        r = await self.client.delete(
            f"/api/notes/{self.note_id}",
            name="/api/notes/[id]",
            headers={"Authorization": f"Bearer {self.token}", "X-Csrf-Token": self.csrftoken},
        )
        r.check(status=204)
        r = await self.client.get(
            "/api/orders/00000000-0000-0000-0000-000000000000",
            name="/api/orders/[uuid]",
            headers={"Authorization": f"Bearer {self.token}"},
            expect=404,
        )
        r.check(status=404)
        r = await self.client.get("/api/profile", headers={"Authorization": f"Bearer {self.token}"})
        r.check(status=(200, 304))
