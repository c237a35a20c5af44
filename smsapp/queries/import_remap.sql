-- Re-running an import's dry-run with another mapping, from the cells stored at upload.

-- name: raw_rows
SELECT row_number, raw FROM import_rows WHERE import_batch_id = :id ORDER BY row_number;
