-- The figures of each keyword agree with one another: found_photos <=
-- downloaded_photos <= searches, recall_at_k = found_photos /
-- downloaded_photos, a best rank and a reciprocal rank exactly when a photo
-- was found, and only the photos' model. Rows break it.

with

relevance as (
    select
        keyword,
        model,
        searches,
        downloaded_photos,
        found_photos,
        k,
        recall_at_k,
        mrr,
        best_rank
    from {{ ref('keyword_search_relevance') }}
),

photo_models as (
    select distinct embed_model
    from {{ ref('photos') }}
)

select
    keyword,
    model,
    searches,
    downloaded_photos,
    found_photos,
    recall_at_k,
    mrr,
    best_rank
from relevance
where
    found_photos > downloaded_photos
    or downloaded_photos > searches
    or abs(recall_at_k - found_photos / downloaded_photos) > 1e-9
    or (found_photos > 0) != (best_rank is not null)
    or (mrr > 0) != (found_photos > 0)
    or model not in (select photo_models.embed_model from photo_models)
