import gevent
from gevent.pool import Pool

from locust import HttpUser, task


class Parallel(HttpUser):
    @task
    def fan_out(self):
        pool = Pool(3)
        for path in ("/a", "/b", "/c"):
            pool.spawn(self.fetch, path)
        pool.join()
        gevent.sleep(0.1)

    def fetch(self, path):
        self.client.get(path)
