-- loadgen results store, version 4: runs are matched on a stable scenario identity.
-- Comparisons used to match runs on the scenario as given: the normalised path
-- (scenarios/content.py and /abs/dir/content.py were two scenarios) or, in ad-hoc
-- mode, 'METHOD URL' (a candidate on another address found no baseline). From now on
-- the identity is --scenario-name or the scenario's options name, else the file's
-- name without its folders (content.py), else 'METHOD /path?query'. This rewrites the
-- stored keys of runs and comparisons into that form. A name a scenario is given
-- later cannot be known here: its older runs keep the file's name.
-- SQLite has no regular expressions: the parts are cut with instr and substr, one
-- step at a time, in a temporary table from each distinct old key to its new one.

CREATE TEMP TABLE scenario_identity (old TEXT PRIMARY KEY, method TEXT, target TEXT, new TEXT);

INSERT INTO scenario_identity (old)
    SELECT scenario FROM runs WHERE scenario IS NOT NULL
    UNION SELECT scenario FROM comparisons WHERE scenario IS NOT NULL;

-- Ad-hoc keys, 'METHOD http://authority/path?query#fragment': the method (an HTTP token:
-- M-SEARCH, BREW_2, not only letters), and the URL after its '://'.
UPDATE scenario_identity
   SET method = substr(old, 1, instr(old, ' ') - 1),
       target = substr(old, instr(old, '://') + 3)
 WHERE instr(old, ' ') > 1
   AND substr(old, 1, instr(old, ' ') - 1) NOT GLOB '*[^-!#$%&''*+.^_`|~0-9A-Za-z]*'
   AND instr(old, '://') > instr(old, ' ')
   AND lower(substr(old, instr(old, ' ') + 1, instr(old, '://') - instr(old, ' ') - 1)) IN ('http', 'https');

-- No fragment (it is never sent), then no authority: what starts at the first '/' or '?'.
UPDATE scenario_identity SET target = substr(target, 1, instr(target, '#') - 1)
 WHERE method IS NOT NULL AND instr(target, '#') > 0;

UPDATE scenario_identity
   SET target = CASE
       WHEN instr(target, '/') = 0 AND instr(target, '?') = 0 THEN ''
       WHEN instr(target, '/') = 0 THEN substr(target, instr(target, '?'))
       WHEN instr(target, '?') = 0 THEN substr(target, instr(target, '/'))
       ELSE substr(target, min(instr(target, '/'), instr(target, '?')))
   END
 WHERE method IS NOT NULL;

UPDATE scenario_identity
   SET new = method || ' ' || CASE WHEN substr(target, 1, 1) = '/' THEN target ELSE '/' || target END
 WHERE method IS NOT NULL;

-- Scenario files: the name after the last '/'. rtrim drops every character but '/' from
-- the end, which leaves the folders; replace takes them off the front. A key already in
-- the new ad-hoc form ('GET /path') is left alone.
UPDATE scenario_identity SET new = replace(old, rtrim(old, replace(old, '/', '')), '')
 WHERE method IS NULL
   AND NOT (instr(old, ' ') > 1
            AND substr(old, 1, instr(old, ' ') - 1) NOT GLOB '*[^A-Z]*'
            AND substr(old, instr(old, ' ') + 1, 1) = '/');

UPDATE runs SET scenario = (SELECT new FROM scenario_identity WHERE old = runs.scenario)
 WHERE scenario IN (SELECT old FROM scenario_identity WHERE new IS NOT NULL AND new <> old);

UPDATE comparisons SET scenario = (SELECT new FROM scenario_identity WHERE old = comparisons.scenario)
 WHERE scenario IN (SELECT old FROM scenario_identity WHERE new IS NOT NULL AND new <> old);

DROP TABLE scenario_identity;
