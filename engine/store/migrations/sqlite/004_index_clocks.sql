-- The running clocks of each index row get a column of their own: only `due` reads
-- them, and `list` (which reads every row) then parses a small summary per incident
-- instead of one that also holds every clock. Rows written before this migration keep
-- their clocks inside the summary (NULL here) until `playbook db upgrade` moves them
-- out or the incident's next write replaces the row; readers accept both.
ALTER TABLE incident_index ADD COLUMN clocks TEXT;
