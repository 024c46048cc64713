-- Store the batch's reconciliation and mark it promoted, in the promoting transaction. The
-- CHECK load_batch_promotion_reconciled (V005) refuses counts that do not add up.
UPDATE audit.load_batch
   SET status          = 'promoted',
       rows_promoted   = %(promoted)s,
       rows_superseded = %(superseded)s,
       rows_kept       = %(kept)s,
       promoted_at     = now(),
       error           = NULL
 WHERE batch_id = %(batch_id)s
   AND status = 'validated';
