// k6 script for bench/run.py. Environment (set with -e): TARGET (URL),
// MODE ("vus" = closed model, constant-vus; "rate" = open model,
// constant-arrival-rate), VUS, RATE, DURATION (e.g. "10s"), SUMMARY (path of
// the JSON summary this script writes through handleSummary).
import http from 'k6/http';

const MODE = __ENV.MODE || 'vus';
const DURATION = __ENV.DURATION || '10s';

const scenarios = MODE === 'rate'
  ? {
      bench: {
        executor: 'constant-arrival-rate',
        rate: parseInt(__ENV.RATE || '200', 10),
        timeUnit: '1s',
        duration: DURATION,
        preAllocatedVUs: parseInt(__ENV.VUS || '1000', 10),
        maxVUs: parseInt(__ENV.VUS || '1000', 10),
        gracefulStop: '5s',
      },
    }
  : {
      bench: {
        executor: 'constant-vus',
        vus: parseInt(__ENV.VUS || '64', 10),
        duration: DURATION,
        gracefulStop: '5s',
      },
    };

export const options = {
  scenarios,
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

export default function () {
  http.get(__ENV.TARGET);
}

// Write the end-of-test summary as JSON to SUMMARY (bench/run.py reads
// metrics.http_reqs.values.count and state.testRunDurationMs from it) and a
// short text line to stdout.
export function handleSummary(data) {
  const out = {};
  if (__ENV.SUMMARY) out[__ENV.SUMMARY] = JSON.stringify(data);
  const reqs = data.metrics.http_reqs ? data.metrics.http_reqs.values.count : 0;
  out.stdout = `http_reqs=${reqs} duration_ms=${data.state.testRunDurationMs}\n`;
  return out;
}
