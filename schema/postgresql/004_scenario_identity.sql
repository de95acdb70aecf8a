-- loadgen results store, version 4: runs are matched on a stable scenario identity.
-- Comparisons used to match runs on the scenario as given: the normalised path
-- (scenarios/content.py and /abs/dir/content.py were two scenarios) or, in ad-hoc
-- mode, 'METHOD URL' (a candidate on another address found no baseline). From now on
-- the identity is --scenario-name or the scenario's options name, else the file's
-- name without its folders (content.py), else 'METHOD /path?query'. This rewrites the
-- stored keys of runs and comparisons into that form. A name a scenario is given
-- later cannot be known here: its older runs keep the file's name.

CREATE TEMP TABLE scenario_identity AS
    SELECT scenario AS old, NULL::text AS new FROM runs WHERE scenario IS NOT NULL
    UNION SELECT scenario, NULL::text FROM comparisons WHERE scenario IS NOT NULL;

-- Ad-hoc keys, 'METHOD http://authority/path?query#fragment': the method and the path
-- and query (no authority; no fragment, it is never sent), '/' when the URL has no path.
-- A method is an HTTP token (M-SEARCH, BREW_2), not only letters.
UPDATE scenario_identity
   SET new = regexp_replace(old, '^([-!#$%&''*+.^_`|~0-9A-Za-z]+) [Hh][Tt][Tt][Pp][Ss]?://[^/?#]*([^#]*).*$', '\1 \2')
 WHERE old ~ '^[-!#$%&''*+.^_`|~0-9A-Za-z]+ [Hh][Tt][Tt][Pp][Ss]?://';

UPDATE scenario_identity SET new = regexp_replace(new, '^([-!#$%&''*+.^_`|~0-9A-Za-z]+) ', '\1 /')
 WHERE new IS NOT NULL AND new !~ '^[-!#$%&''*+.^_`|~0-9A-Za-z]+ /';

-- Scenario files: the name after the last '/'. A key already in the new ad-hoc form
-- ('GET /path') is left alone.
UPDATE scenario_identity SET new = regexp_replace(old, '^.*/', '')
 WHERE new IS NULL AND old !~ '^[A-Z]+ /';

UPDATE runs SET scenario = m.new FROM scenario_identity m
 WHERE runs.scenario = m.old AND m.new IS NOT NULL AND m.new <> m.old;

UPDATE comparisons SET scenario = m.new FROM scenario_identity m
 WHERE comparisons.scenario = m.old AND m.new IS NOT NULL AND m.new <> m.old;

DROP TABLE scenario_identity;
