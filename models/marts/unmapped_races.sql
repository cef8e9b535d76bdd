with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

final as (
    select
        race_id,
        season as year,
        race_name as name,
        reason,
        detail,
        circuit_id,
        candidate_count,
        race_start_at
    from mapping
    where status = 'unmapped'
)

select * from final
