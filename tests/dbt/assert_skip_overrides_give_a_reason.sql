-- A "skip" override must say which unmapped reason to report; a "map" override needs both keys.
with

overrides as (
    select * from {{ ref('mapping_overrides') }}
),

failures as (
    select *
    from overrides
    where (action = 'skip' and reason is null)
        or (action = 'map' and (meeting_key is null or session_key is null))
)

select * from failures
