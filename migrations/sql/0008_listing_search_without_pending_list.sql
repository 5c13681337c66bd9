-- The listing search's GIN index wrote new entries into a pending list
-- (`fastupdate`, PostgreSQL's default), which every search scans in full
-- until a vacuum merges it. Right after the read model was built, a search
-- for a word matching no listing read 466 pages (4 MB, the whole list) and
-- took 5 ms of CPU instead of 7 pages: at 100,000 listings the read API
-- answered 930 queries/s instead of 6,400. Listings are written far less
-- often than searched, so entries now go straight into the index.
ALTER INDEX rm_listings_search SET (fastupdate = off);
SELECT gin_clean_pending_list('rm_listings_search'::regclass);
